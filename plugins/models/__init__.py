"""Built-in model plugins, one entry point each.

Each factory is called as ``factory(config: ModelConfig, ctx: ModelContext)``
and returns a :class:`polymodal.model_api.PolymodalModel`; see that module for
the contract. This module stays light: implementations import torch.
"""

from polymodal import component

fusion_classifier = component(
    "models", "fusion-classifier", "polymodal_plugins.models.fusion_classifier:FusionClassifier",
    description="Encoders per input field -> a fusion strategy -> MLP head; classifies any mix of modalities.",
    capabilities=["classify"],
)
dual_encoder = component(
    "models", "dual-encoder", "polymodal_plugins.models.dual_encoder:DualEncoder",
    description="CLIP-style joint embedding of two fields: projections, cosine similarity, symmetric InfoNCE.",
    capabilities=["embed"],
)
co_learning = component(
    "models", "co-learning", "polymodal_plugins.models.co_learning:CoLearning",
    description="Unimodal classifiers trained together with L = L_ce + lambda * L_sim; each usable alone.",
    capabilities=["classify", "embed"],
)
hf_clip = component(
    "models", "hf-clip", "polymodal_plugins.models.hf_clip:HFClip",
    description="A transformers CLIPModel from a hub id or local folder: zero-shot, retrieval, CLIPScore.",
    capabilities=["embed", "classify"],
)
# Named ``*_model``, not after the implementation module: importing ``polymodal_plugins.models.captioner``
# would otherwise replace this plugin object with the submodule and silently unregister the model.
captioner_model = component(
    "models", "captioner", "polymodal_plugins.models.captioner:Captioner",
    description="CNN image encoder + LSTM decoder with additive attention over spatial features; greedy/beam decoding.",
    capabilities=["caption"],
)
text_to_image_model = component(
    "models", "text-to-image", "polymodal_plugins.models.text_to_image:TextToImage",
    description="Text encoder -> pixel-shuffle upsampling decoder trained with an L1/MSE reconstruction loss.",
    capabilities=["generate"],
)
