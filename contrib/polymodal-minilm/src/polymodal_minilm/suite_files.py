"""Where the suite files shipped with this package live (importlib.resources, so zip installs work)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def zero_shot_suite() -> Path:
    """Path of ``minilm-zero-shot.toml``: the demonstration suite of this package."""
    return Path(str(resources.files("polymodal_minilm") / "suites" / "minilm-zero-shot.toml"))
