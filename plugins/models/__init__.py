"""Built-in models plugins (each its own entry point)."""

from polymodal import component

captioner = component(
    "models", "captioner", "polymodal_plugins.models.captioner:Captioner",
    description="CNN image encoder + LSTM decoder with additive attention over spatial features; greedy/beam decoding.",
    capabilities=["caption"],
)
text_to_image = component(
    "models", "text-to-image", "polymodal_plugins.models.text_to_image:TextToImage",
    description="Text encoder -> pixel-shuffle upsampling decoder trained with an L1/MSE reconstruction loss.",
    capabilities=["generate"],
)
