"""Write throwaway 'installed' distributions with entry points, for discovery tests.

importlib.metadata finds any ``*.dist-info`` folder on ``sys.path``, so a
folder with a METADATA file, an entry_points.txt and the plugin module is a
real installed distribution as far as polymodal can tell.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def write_dist(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str],
               version: str = "1.0") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[polymodal]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def run_cli(args: list[str], path: Path | None = None, env: dict[str, str] | None = None,
            code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m polymodal ARGS`` (or ``python -c CODE``) with ``path`` on PYTHONPATH."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("POLYMODAL_")}
    if path is not None:
        full_env["PYTHONPATH"] = str(path) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "polymodal", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=120)
