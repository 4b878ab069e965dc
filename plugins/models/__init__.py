"""Built-in model plugins, one entry point each.

Each factory is called as ``factory(config: ModelConfig, ctx: ModelContext)``
and returns a :class:`polymodal.model_api.PolymodalModel`; see that module for
the contract. Their parameters are ``attrs`` classes in :mod:`.params`,
validated before anything trains. This module stays light: implementations
import torch.

The plugin objects are named ``<module>_plugin``, never like their
implementation module: importing ``polymodal_plugins.models.captioner`` sets
the package attribute ``captioner`` to that submodule, so an entry point
``polymodal_plugins.models:captioner`` would load a module that registers
nothing in any plugin manager built after the first model was used.
"""

from polymodal import component

fusion_classifier_plugin = component(
    "models", "fusion-classifier", "polymodal_plugins.models.fusion_classifier:FusionClassifier",
    description="Encoders per input field -> a fusion strategy -> MLP head; classifies any mix of modalities.",
    capabilities=["classify"], tags=["fusion"], params="polymodal_plugins.models.params:FusionClassifierParams",
)
dual_encoder_plugin = component(
    "models", "dual-encoder", "polymodal_plugins.models.dual_encoder:DualEncoder",
    description="CLIP-style joint embedding of two fields: projections, cosine similarity, symmetric InfoNCE.",
    capabilities=["embed"], params="polymodal_plugins.models.params:DualEncoderParams",
)
co_learning_plugin = component(
    "models", "co-learning", "polymodal_plugins.models.co_learning:CoLearning",
    description="Unimodal classifiers trained together with L = L_ce + lambda * L_sim; each usable alone.",
    capabilities=["classify"], params="polymodal_plugins.models.params:CoLearningParams",
)
hf_clip_plugin = component(
    "models", "hf-clip", "polymodal_plugins.models.hf_clip:HFClip",
    description="A transformers CLIP/SigLIP dual encoder from a hub id or local folder: zero-shot, retrieval, CLIPScore.",
    capabilities=["embed", "classify"], params="polymodal_plugins.models.params:HFClipParams",
)
# Named ``*_model``, not after the implementation module: importing ``polymodal_plugins.models.captioner``
# would otherwise replace this plugin object with the submodule and silently unregister the model.
captioner_model = component(
    "models", "captioner", "polymodal_plugins.models.captioner:Captioner",
    description="CNN image encoder + LSTM decoder with additive attention over spatial features; greedy/beam decoding.",
    capabilities=["caption"], params="polymodal_plugins.models.params:CaptionerParams",
)
text_to_image_model = component(
    "models", "text-to-image", "polymodal_plugins.models.text_to_image:TextToImage",
    description="Text encoder -> pixel-shuffle upsampling decoder trained with an L1/MSE reconstruction loss.",
    capabilities=["generate"], params="polymodal_plugins.models.params:TextToImageParams",
)
hf_whisper_model = component(
    "models", "hf-whisper", "polymodal_plugins.models.hf_whisper:HFWhisper",
    description="A transformers Whisper (hub id or local folder) transcribing the audio field; long audio windowed.",
    capabilities=["transcribe"], params="polymodal_plugins.models.params:HFWhisperParams",
)
hf_vlm_model = component(
    "models", "hf-vlm", "polymodal_plugins.models.hf_vlm:HFVLM",
    description="A transformers image-text-to-text model (LLaVA, Qwen2-VL, Idefics3 ...): answer, caption, "
                "multiple choice by letter or likelihood; batched, dtype, device_map.",
    capabilities=["answer", "caption"], params="polymodal_plugins.models.params:HFVLMParams",
)
