"""No plugin reaches into another plugin's (or the core's) private names.

Built-in plugins get no privilege a third party lacks: what one plugin needs
from another, or from the core, must be public (no leading underscore), so a
refactor of private helpers never breaks a published plugin. The scan reads
the source (AST) of every module under ``plugins/`` and each contrib
package's ``src/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _package_of(path: Path) -> str:
    """The plugin a module belongs to: ``polymodal_plugins.<sub>`` or the contrib package name."""
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "plugins":
        return "polymodal_plugins." + rel.parts[1].removesuffix(".py") if len(rel.parts) > 2 else "polymodal_plugins"
    return rel.parts[3]  # contrib/<dist>/src/<package>/...


def _owner(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "polymodal_plugins":
        return ".".join(parts[:2])
    return parts[0]


def private_imports(sources: dict[Path, str] | None = None) -> list[str]:
    """``path:line imports module: names`` for each import of a private name across plugins."""
    if sources is None:
        files = [*ROOT.glob("plugins/**/*.py"), *ROOT.glob("contrib/*/src/**/*.py")]
        assert files
        sources = {p: p.read_text(encoding="utf-8") for p in files}
    found = []
    for path, text in sources.items():
        mine = _package_of(path)
        tree = ast.parse(text, str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                owner = _owner(node.module)
                if owner == mine:
                    continue
                private_module = any(p.startswith("_") and not p.startswith("__") for p in node.module.split("."))
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private_module or names:
                    what = node.module + (f": {', '.join(names)}" if names else "")
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {what}")
    return found


def test_no_plugin_imports_another_plugins_private_names():
    assert private_imports() == []


def test_the_scan_catches_private_imports_and_allows_its_own():
    probe = ROOT / "plugins" / "axes" / "probe.py"
    found = private_imports({probe: "from polymodal_plugins.training.trainer import _fmt\n"
                                    "from polymodal_plugins.axes.noise import _private_but_mine\n"
                                    "from polymodal._internal import thing\n"
                                    "from polymodal.perturb import project\n"})
    assert found == ["plugins/axes/probe.py:1 imports polymodal_plugins.training.trainer: _fmt",
                     "plugins/axes/probe.py:3 imports polymodal._internal"]
