"""The platform's own error types.

Every error a user can cause is a :class:`PolymodalError`; the CLI prints its
message and exits non-zero without a traceback (``--debug`` shows one). Anything
else escaping is a bug in polymodal or a plugin.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PolymodalError(Exception):
    """Base class of every error polymodal reports to a user."""


class PluginError(PolymodalError):
    """A plugin failed to load, registered something invalid, or raised in a hook."""


class ConflictError(PluginError):
    """Two plugins registered the same name of the same kind."""


class UnknownNameError(PolymodalError, KeyError):
    """A component name that no loaded plugin provides."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0]) if self.args else ""


class ConfigError(PolymodalError):
    """A configuration or suite file is malformed or names something invalid."""


class DataError(PolymodalError):
    """A dataset, sample or input file is missing, malformed or refused."""


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return `` (did you mean 'a', 'b'?)`` or an empty string."""
    matches = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + ", ".join(repr(m) for m in matches) + "?)"
