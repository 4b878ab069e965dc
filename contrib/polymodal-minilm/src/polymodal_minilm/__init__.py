"""Plugin objects of polymodal-minilm (entry points ``minilm.encoder``, ``minilm.suite``,
``minilm.fusion-suite``).

Light on purpose: the encoder (transformers, torch) is a lazy
``"module:Class"`` string, imported only when a suite builds it.
"""

from polymodal import component

POLYMODAL_API = "2.0"

encoder = component(
    "encoders", "minilm", "polymodal_minilm.text_encoder:MiniLMTextEncoder",
    description="Pretrained all-MiniLM-L6-v2 text encoder (384-d tokens, frozen by default), loaded offline.",
    params={"freeze": True, "max_length": 32, "trust_remote_code": False},
    tags=["text", "pretrained"],
)
suite = component(
    "suites", "minilm-zero-shot", "polymodal_minilm.suite_files:zero_shot_suite",
    description="Frozen MiniLM text tower + image tower trained on shapes; zero-shot on unseen combinations/phrasings.",
)
fusion_suite = component(
    "suites", "minilm-fusion-ablation", "polymodal_minilm.suite_files:fusion_ablation_suite",
    description="MiniLM text + CNN image classifier on shapes, fusion swept over concat/tensor/low-rank-tensor/gmu.",
)
for _plugin in (encoder, suite, fusion_suite):
    _plugin.POLYMODAL_API = POLYMODAL_API
del _plugin
