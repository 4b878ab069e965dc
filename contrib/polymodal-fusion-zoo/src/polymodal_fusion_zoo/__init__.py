"""Plugin objects of polymodal-fusion-zoo (one per entry point).

Implementation modules deliberately have names different from the plugin
objects (``tensor_fusion`` vs ``tensor``): importing a submodule sets it as an
attribute of this package and would otherwise shadow the plugin object.

This module is what the entry points load, so it must stay light: it names
each implementation as a lazy ``"module:Class"`` string and imports no torch.
``POLYMODAL_API`` declares the plugin API these plugins were written against;
a core that provides an older API refuses them with a clear message instead of
failing later in a hook call.
"""

from polymodal import component

POLYMODAL_API = "2.1"

tensor = component(
    "fusions", "tensor", "polymodal_fusion_zoo.tensor_fusion:TensorFusion",
    description="Tensor fusion (Zadeh et al. 2017): outer product of modality vectors, each with an appended 1.",
    params={"modality_dim": 16, "output_dim": 128, "dropout": 0.0},
)
low_rank_tensor = component(
    "fusions", "low-rank-tensor", "polymodal_fusion_zoo.low_rank_fusion:LowRankTensorFusion",
    description="Low-rank multimodal fusion (Liu et al. 2018): tensor fusion with a rank-R factorised weight.",
    params={"output_dim": 128, "rank": 4},
)
gmu = component(
    "fusions", "gmu", "polymodal_fusion_zoo.gated_unit:GatedMultimodalUnit",
    description="Gated multimodal unit (Arevalo et al. 2017): per-dimension learned gates mix modality vectors.",
    params={"output_dim": 128},
)
for _plugin in (tensor, low_rank_tensor, gmu):
    _plugin.POLYMODAL_API = POLYMODAL_API
del _plugin

__all__ = ["POLYMODAL_API", "gmu", "low_rank_tensor", "tensor"]
