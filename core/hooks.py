"""The ``hookimpl`` marker plugins decorate their hook implementations with."""

import pluggy

hookimpl = pluggy.HookimplMarker("polymodal")
