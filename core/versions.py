"""The one record of what produced a result: polymodal, Python, torch, platform and plugins.

Written into a suite's ``manifest.json`` and into every checkpoint, so both
say the same thing in the same shape. torch is imported only when called.
"""

from __future__ import annotations

import platform
from typing import Any


def versions(plugins: Any | None = None) -> dict[str, Any]:
    """Versions of polymodal, Python, torch and the platform, plus each plugin's distribution and status."""
    import torch

    import polymodal

    out: dict[str, Any] = {
        "polymodal": polymodal.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    if plugins is not None:
        out["plugins"] = {r.name: {"distribution": r.distribution, "version": r.version, "status": r.status}
                          for r in plugins.records.values()}
    return out


__all__ = ["versions"]
