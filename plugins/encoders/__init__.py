"""Built-in encoder plugins, one entry point per family (implementations import lazily)."""

from polymodal import component

cnn = component("encoders", "cnn", "polymodal_plugins.encoders.cnn:CNNEncoder",
                description="Compact trainable CNN image encoder; spatial tokens [B, h*w, D].", tags=["image"])
gru = component("encoders", "gru", "polymodal_plugins.encoders.text_rnn:GRUTextEncoder",
                description="Trainable (bi)GRU text encoder over token ids.", tags=["text"])
transformer = component("encoders", "transformer", "polymodal_plugins.encoders.text_transformer:TransformerTextEncoder",
                        description="Small trainable transformer text encoder over token ids.", tags=["text"])
audio = component("encoders", "audio", "polymodal_plugins.encoders.audio_cnn:AudioCNNEncoder",
                  description="Small 1-D CNN over MFCC/log-mel frames.", tags=["audio"])
video = component("encoders", "video", "polymodal_plugins.encoders.video:VideoEncoder",
                  description="Any registered image encoder per frame plus temporal pooling (mean/attention/none).",
                  tags=["video"])
timm = component("encoders", "timm", "polymodal_plugins.encoders.timm_encoder:TimmEncoder",
                 description="Any timm architecture by name (pretrained via timm or a local file); spatial or pooled tokens.",
                 tags=["image"])
hf_text = component("encoders", "hf-text", "polymodal_plugins.encoders.hf_text:HFTextEncoder",
                    description="transformers AutoModel text encoder (hub id or local dir), cls/mean/tokens pooling.",
                    tags=["text"])
hf_vision = component("encoders", "hf-vision", "polymodal_plugins.encoders.hf_vision:HFVisionEncoder",
                      description="transformers AutoModel vision encoder (hub id or local dir), cls/mean/tokens pooling.",
                      tags=["image"])
