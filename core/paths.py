"""Resolving dataset-relative paths without letting them escape the dataset root.

Datasets come from other people: a manifest row saying ``../../etc/passwd``,
an absolute path, or a symlink pointing outside the dataset folder must be
refused rather than read. Every reader resolves sample paths through
:func:`resolve_inside`.
"""

from __future__ import annotations

import os
from pathlib import Path

from polymodal.errors import DataError


def resolve_inside(root: str | os.PathLike[str] | None, value: str | os.PathLike[str], *, what: str = "") -> Path:
    """Resolve ``value`` against ``root`` and check that it stays inside it.

    Symlinks are followed before checking, so a link inside the root that
    points outside is refused too. With ``root=None`` (a value given
    directly by the user, not by a dataset file) the path is only resolved.
    ``what`` prefixes error messages (e.g. ``"dataset 'coco', sample 12"``).
    """
    prefix = f"{what}: " if what else ""
    text = os.fspath(value)
    if "\x00" in text:
        raise DataError(f"{prefix}path {text!r} contains a NUL byte")
    if root is None:
        return Path(text).expanduser().resolve()
    base = Path(root).expanduser().resolve()
    candidate = Path(text)
    full = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if full != base and base not in full.parents:
        raise DataError(
            f"{prefix}path {text!r} resolves to {str(full)!r}, outside the dataset root {str(base)!r}; "
            f"sample paths must stay inside the root (no '..', absolute paths or symlinks leading out)"
        )
    return full
