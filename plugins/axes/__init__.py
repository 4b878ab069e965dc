"""Built-in evaluation axes, one entry point each (light: implementations import torch).

Each factory is called with the axis parameters of the suite and returns an
object with ``requires`` and ``run(model, data, ctx)``; see
:mod:`polymodal.evaluation` for the contract.
"""

from polymodal import component

task = component(
    "axes", "task", "polymodal_plugins.axes.task:TaskAxis",
    description="Task metrics for what the model does: classification/video accuracy, top-k, F1, balanced "
                "accuracy; captioning BLEU/ROUGE-L/CIDEr-D; text-to-image IS/FID/KID and CLIPScore.",
)
zero_shot = component(
    "axes", "zero-shot", "polymodal_plugins.axes.zero_shot:ZeroShotAxis",
    description="Zero-shot classification from prompt-template class embeddings on unseen classes / held-out "
                "attribute combinations: top-1, top-5, mean per-class recall.",
)
retrieval = component(
    "axes", "retrieval", "polymodal_plugins.axes.retrieval:RetrievalAxis",
    description="Cross-modal retrieval both ways for every embedded field pair: recall@K, mean/median rank, "
                "mAP, MRR, with example rankings.",
)
attention = component(
    "axes", "interpretability.attention", "polymodal_plugins.axes.attention:AttentionAxis",
    description="Attention maps of the attention fusion and the captioner as heatmaps over images / token "
                "weights, with modality attention mass and entropy figures.",
)
importance = component(
    "axes", "interpretability.importance", "polymodal_plugins.axes.importance:ImportanceAxis",
    description="Modality ablation and exact Shapley values, integrated gradients and occlusion attribution, "
                "deletion-curve faithfulness check.",
)
