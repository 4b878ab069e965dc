"""Where the suite shipped with this package lives (importlib.resources, so zip installs work)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def depth_suite() -> Path:
    """``depth-quickstart``: every built-in axis that applies, plus range estimation, on depth-shapes."""
    return Path(str(resources.files("polymodal_depth") / "suites" / "depth-quickstart.toml"))
