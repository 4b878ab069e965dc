"""Deprecated: the fusion input helpers are public now, in :mod:`polymodal.fusion`.

Built-in and third-party fusions import ``gather_inputs``, ``FusionInputs``,
``check_input_dims`` and ``check_positive`` from there. Importing them from
here keeps working, with a :class:`DeprecationWarning`, until plugin API 3.
"""

import warnings

_MOVED = ("FusionInputs", "check_input_dims", "check_positive", "gather_inputs")


def __getattr__(name: str) -> object:
    # Not polymodal.compat.moved: plugins use only the public API, and compat is internal.
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"{__name__}.{name} moved to polymodal.fusion.{name}; import it from there "
                  "(see docs/migration.md)", DeprecationWarning, stacklevel=2)
    import polymodal.fusion

    return getattr(polymodal.fusion, name)
