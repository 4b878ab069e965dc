"""Deprecated: :func:`resolve_inside` lives in :mod:`polymodal.data` (the component API).

``from polymodal.paths import resolve_inside`` keeps working, with a
:class:`DeprecationWarning`, until plugin API 3.
"""

from polymodal.compat import moved

__getattr__ = moved(__name__, ["resolve_inside"])
