"""Test-wide settings: offline hubs, one thread, quiet plugin environment."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for var in ("POLYMODAL_LOAD_PLUGINS", "POLYMODAL_DISABLE_PLUGINS", "POLYMODAL_STRICT_PLUGINS",
            "POLYMODAL_TRACE_PLUGINS", "POLYMODAL_CONFIG"):
    os.environ.pop(var, None)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
