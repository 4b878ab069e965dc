"""Built-in fusion strategies, one entry point each.

This module must stay light (no torch import): each plugin is a lazy
:func:`polymodal.component` pointing at its implementation module.
"""

from polymodal import component

# The plugin objects are not named after their implementation modules (``concat`` etc.): importing
# ``polymodal_plugins.fusions.concat`` sets the package attribute ``concat`` to that submodule, and an
# entry point read afterwards would load the module instead of the plugin and register nothing.

concat_fusion = component(
    "fusions", "concat", "polymodal_plugins.fusions.concat:ConcatFusion",
    description="Concatenate mean-pooled modality features; optional projection and presence flags.",
    params={"dim": None, "missing_indicator": False, "activation": False},
)
weighted_fusion = component(
    "fusions", "weighted", "polymodal_plugins.fusions.weighted:WeightedFusion",
    description="Weighted average of projected modality features; fixed or learned weights, optional per-sample gating.",
    params={"dim": None, "weights": None, "gating": False},
)
attention_fusion = component(
    "fusions", "attention", "polymodal_plugins.fusions.attention:AttentionFusion",
    description="Cross-modal multi-head attention over token sequences (each modality attends to the others).",
    params={"dim": 128, "heads": 4, "layers": 1, "dropout": 0.0},
)
bilinear_fusion = component(
    "fusions", "bilinear", "polymodal_plugins.fusions.bilinear:BilinearFusion",
    description="Element-wise product of tanh-projected modality features (low-rank bilinear pooling): learns interactions.",
    params={"dim": 128},
)
