"""Plugin object of polymodal-modality-gap (entry point ``modality-gap.metric``); imports no torch."""

from polymodal import component

POLYMODAL_API = "2.0"

metric = component(
    "metrics", "modality-gap", "polymodal_modality_gap.gap_metric:ModalityGap",
    description="Modality gap (centroid distance on the unit sphere), alignment and uniformity of paired embeddings.",
    params={"uniformity_t": 2.0, "alignment_alpha": 2.0},
    tags=["embed", "dual-encoder"],
)
metric.POLYMODAL_API = POLYMODAL_API
