"""Built-in corruptions for ``robustness.noise``, one entry point per raw format.

Each is registered lazily (``module:function``), tagged with the raw format
(a modality's ``raw_format`` trait) it accepts; see
:mod:`polymodal_plugins.axes.corruption` for the contract.
"""

from polymodal import components

audio_plugin = components(
    ("corruptions", "waveform.gaussian_noise", "polymodal_plugins.axes.audio_corruptions:gaussian_noise",
     {"description": "White noise at a signal-to-noise ratio of 30..0 dB.", "tags": ["waveform"]}),
    ("corruptions", "waveform.clipping", "polymodal_plugins.axes.audio_corruptions:clipping",
     {"description": "Hard clipping at 60%..5% of the peak amplitude.", "tags": ["waveform"]}),
    ("corruptions", "waveform.time_mask", "polymodal_plugins.axes.audio_corruptions:time_mask",
     {"description": "Silence 10%..60% of the clip in up to 3 blocks.", "tags": ["waveform"]}),
)
image_plugin = components(
    ("corruptions", "rgb.gaussian_noise", "polymodal_plugins.axes.image_corruptions:gaussian_noise",
     {"description": "Additive Gaussian pixel noise, sigma 0.04..0.26 of the range.", "tags": ["rgb"]}),
    ("corruptions", "rgb.blur", "polymodal_plugins.axes.image_corruptions:blur",
     {"description": "Gaussian blur, sigma 0.03..0.12 of the image side.", "tags": ["rgb"]}),
    ("corruptions", "rgb.jpeg", "polymodal_plugins.axes.image_corruptions:jpeg",
     {"description": "JPEG re-compression at quality 60..5.", "tags": ["rgb"]}),
    ("corruptions", "rgb.occlusion", "polymodal_plugins.axes.image_corruptions:occlusion",
     {"description": "A grey square covering 5..50% of the image at a random place.", "tags": ["rgb"]}),
    ("corruptions", "rgb.contrast", "polymodal_plugins.axes.image_corruptions:contrast",
     {"description": "Contrast reduced towards the mean grey, keeping 60%..10%.", "tags": ["rgb"]}),
)
text_plugin = components(
    ("corruptions", "text.typos", "polymodal_plugins.axes.text_corruptions:typos",
     {"description": "Character edits (swap, drop, insert, replace) in 5%..50% of words.", "tags": ["text"]}),
    ("corruptions", "text.word_dropout", "polymodal_plugins.axes.text_corruptions:word_dropout",
     {"description": "Drop 10%..60% of the words (at least one word is kept).", "tags": ["text"]}),
    ("corruptions", "text.word_shuffle", "polymodal_plugins.axes.text_corruptions:word_shuffle",
     {"description": "Permute a random 20%..100% of the word positions among themselves.", "tags": ["text"]}),
    ("corruptions", "text.paraphrase", "polymodal_plugins.axes.text_corruptions:paraphrase",
     {"description": "A question inside prompt templates, from 'Question: ...' (1) to chatty wording (5); "
                     "only where a suite names it.", "tags": ["text", "on_request"]}),
)
video_plugin = components(
    ("corruptions", "frames.frame_drop", "polymodal_plugins.axes.video_corruptions:frame_drop",
     {"description": "Lose 10%..70% of the frames; each is replaced by the previous kept one.", "tags": ["frames"]}),
    ("corruptions", "frames.frame_shuffle", "polymodal_plugins.axes.video_corruptions:frame_shuffle",
     {"description": "Permute a random 20%..100% of the frames among themselves.", "tags": ["frames"]}),
)
