"""Where the suite files shipped with this package live (importlib.resources, so zip installs work)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _suite(name: str) -> Path:
    return Path(str(resources.files("polymodal_minilm") / "suites" / f"{name}.toml"))


def zero_shot_suite() -> Path:
    """``minilm-zero-shot``: frozen MiniLM text tower, image tower trained on shapes, zero-shot evaluation."""
    return _suite("minilm-zero-shot")


def fusion_ablation_suite() -> Path:
    """``minilm-fusion-ablation``: MiniLM + CNN classifier swept over fusions (incl. polymodal-fusion-zoo's)."""
    return _suite("minilm-fusion-ablation")
