"""Built-in evaluation axes, one entry point each (light: implementations import torch).

Each factory is called with the axis parameters of the suite and returns an
object with ``requires`` and ``run(model, data, ctx)``; see
:mod:`polymodal.evaluation` for the contract. The objects are named ``*_axis``: a name equal to an
implementation module (``task``) would be replaced by that submodule as soon
as it is imported, and the entry point would then load a module, not a plugin.
"""

from polymodal import component

robustness_noise = component(
    "axes", "robustness.noise", "polymodal_plugins.axes.noise:NoiseAxis",
    description="Per-modality corruptions (image/text/audio/video/missing) at severities 1-5; "
                "curves, relative AUC and corruption error.",
    capabilities=["classify", "embed"],
)
robustness_adversarial = component(
    "axes", "robustness.adversarial", "polymodal_plugins.axes.adversarial:AdversarialAxis",
    description="FGSM/PGD (L-inf, L2) on any modality or several jointly, text in embedding space; "
                "robust accuracy per epsilon and attack success rate.",
    capabilities=["classify"],
)
task_axis = component(
    "axes", "task", "polymodal_plugins.axes.task:TaskAxis",
    description="Task metrics for what the model does: classification/video accuracy, top-k, F1, balanced "
                "accuracy; captioning BLEU/ROUGE-L/CIDEr-D; text-to-image IS/FID/KID and CLIPScore.",
)
zero_shot_axis = component(
    "axes", "zero-shot", "polymodal_plugins.axes.zero_shot:ZeroShotAxis",
    description="Zero-shot classification from prompt-template class embeddings on unseen classes / held-out "
                "attribute combinations: top-1, top-5, mean per-class recall.",
)
retrieval_axis = component(
    "axes", "retrieval", "polymodal_plugins.axes.retrieval:RetrievalAxis",
    description="Cross-modal retrieval both ways for every embedded field pair: recall@K, mean/median rank, "
                "mAP, MRR, with example rankings.",
)
attention_axis = component(
    "axes", "interpretability.attention", "polymodal_plugins.axes.attention:AttentionAxis",
    description="Attention maps of the attention fusion and the captioner as heatmaps over images / token "
                "weights, with modality attention mass and entropy figures.",
)
importance_axis = component(
    "axes", "interpretability.importance", "polymodal_plugins.axes.importance:ImportanceAxis",
    description="Modality ablation and exact Shapley values, integrated gradients and occlusion attribution, "
                "deletion-curve faithfulness check.",
)
