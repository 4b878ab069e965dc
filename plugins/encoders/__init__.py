"""Built-in encoder plugins, one entry point per family (implementations import lazily)."""

from polymodal import component

# Plugin objects end in ``_plugin``: a bare name like ``shapes`` would be overwritten
# by the submodule of the same name as soon as that submodule is imported (Python
# sets it as a package attribute), and the entry point would silently register nothing.

cnn_plugin = component("encoders", "cnn", "polymodal_plugins.encoders.cnn:CNNEncoder",
                description="Compact trainable CNN image encoder; spatial tokens [B, h*w, D].", tags=["image"])
gru_plugin = component("encoders", "gru", "polymodal_plugins.encoders.text_rnn:GRUTextEncoder",
                description="Trainable (bi)GRU text encoder over token ids.", tags=["text"])
transformer_plugin = component("encoders", "transformer", "polymodal_plugins.encoders.text_transformer:TransformerTextEncoder",
                        description="Small trainable transformer text encoder over token ids.", tags=["text"])
audio_plugin = component("encoders", "audio", "polymodal_plugins.encoders.audio_cnn:AudioCNNEncoder",
                  description="Small 1-D CNN over MFCC/log-mel frames.", tags=["audio"])
video_plugin = component("encoders", "video", "polymodal_plugins.encoders.video:VideoEncoder",
                  description="Any registered image encoder per frame plus temporal pooling (mean/attention/none).",
                  tags=["video"])
timm_plugin = component("encoders", "timm", "polymodal_plugins.encoders.timm_encoder:TimmEncoder",
                 description="Any timm architecture by name (pretrained via timm or a local file); spatial or pooled tokens.",
                 tags=["image"])
hf_text_plugin = component("encoders", "hf-text", "polymodal_plugins.encoders.hf_text:HFTextEncoder",
                    description="transformers AutoModel text encoder (hub id or local dir), cls/mean/tokens pooling.",
                    tags=["text"])
hf_vision_plugin = component("encoders", "hf-vision", "polymodal_plugins.encoders.hf_vision:HFVisionEncoder",
                      description="transformers AutoModel vision encoder (hub id or local dir), cls/mean/tokens pooling.",
                      tags=["image"])
