"""Built-in modality plugins, one entry point each.

Nothing heavy is imported here: each plugin is a light :func:`component`
whose implementation module is imported only when the modality is built.
"""

from polymodal import component

# Plugin objects end in ``_plugin``: a bare name like ``shapes`` would be overwritten
# by the submodule of the same name as soon as that submodule is imported (Python
# sets it as a package attribute), and the entry point would silently register nothing.

image_plugin = component("modalities", "image", "polymodal_plugins.modalities.image:ImageModality",
                  description="Images (PNG/JPEG/GIF/WebP via Pillow) resized and normalised per the encoder's data config.")
text_plugin = component("modalities", "text", "polymodal_plugins.modalities.text:TextModality",
                 description="Text tokenised by a transformers tokenizer or a built-in word vocabulary; padding and masks.")
audio_plugin = component("modalities", "audio", "polymodal_plugins.modalities.audio:AudioModality",
                  description="Audio (WAV/FLAC/OGG via soundfile, or a video file's audio track via PyAV), resampled, as "
                              "log-mel or MFCC frames.")
video_plugin = component("modalities", "video", "polymodal_plugins.modalities.video:VideoModality",
                  description="Video from .mp4/.webm/.mkv/.avi files (PyAV, sampled by time with seeking), frame "
                              "folders, animated GIF/WebP or .npy arrays; K frames sampled and preprocessed.")
