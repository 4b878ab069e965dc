"""Plugin object of polymodal-faster-whisper (entry point ``faster-whisper.model``); imports no torch.

The model declares the open capability ``transcribe``: the built-in task,
noise and importance axes read it and score WER/CER, with no core change.
"""

from polymodal import component

POLYMODAL_API = "1.0"

model = component(
    "models", "faster-whisper", "polymodal_faster_whisper.transcriber:FasterWhisper",
    description="Whisper through faster-whisper/CTranslate2 (int8 on CPU): any CTranslate2 folder or hub id.",
    capabilities=["transcribe"],
)
model.POLYMODAL_API = POLYMODAL_API
