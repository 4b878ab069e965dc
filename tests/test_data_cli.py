"""``polymodal list modalities|encoders|datasets`` shows every data plugin and imports no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

EXPECTED = {
    "modalities": {"image", "text", "audio", "video"},
    "encoders": {"cnn", "gru", "transformer", "audio", "video", "timm", "hf-text", "hf-vision"},
    "datasets": {"shapes", "coco-captions", "image-folder", "manifest", "clip-folder", "hf-datasets", "webdataset"},
}

_PROBE = """
import json, sys, io, contextlib
from polymodal.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["list", sys.argv[1], "--json"])
heavy = sorted(m for m in ("torch", "numpy", "PIL", "transformers", "timm", "torchaudio") if m in sys.modules)
print(json.dumps({"code": code, "out": out.getvalue(), "heavy": heavy}))
"""


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_list_shows_everything_without_heavy_imports(kind):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("POLYMODAL_LOAD_PLUGINS", None)
    env.pop("POLYMODAL_DISABLE_PLUGINS", None)
    res = subprocess.run([sys.executable, "-c", _PROBE, kind], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert report["heavy"] == []
    listed = json.loads(report["out"])
    names = {row["name"] for row in listed} if isinstance(listed, list) else {
        row["name"] for rows in listed.values() for row in rows}
    assert EXPECTED[kind] <= names


def test_importing_implementations_first_does_not_hide_plugins():
    """Regression: a plugin object named like its submodule was shadowed once the submodule was imported."""
    import polymodal_plugins.datasets.shapes  # noqa: F401
    import polymodal_plugins.encoders.cnn  # noqa: F401
    import polymodal_plugins.modalities.image  # noqa: F401
    from polymodal import build_plugin_manager

    plugins = build_plugin_manager()
    for kind, names in EXPECTED.items():
        assert names <= set(plugins.registry(kind).names()), kind
