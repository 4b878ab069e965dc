"""Zero-shot classification: class embeddings from prompt templates, then top-k accuracy.

Class embeddings follow CLIP / CLIP_benchmark: embed every template filled
with the class name, L2-normalise each, average over templates, renormalise.
Images are classified by cosine similarity to those class embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from polymodal_plugins.metrics.classification import ClassificationReport

DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.")


def class_embeddings(
    class_names: Sequence[str],
    embed_texts: Callable[[list[str]], torch.Tensor],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
) -> torch.Tensor:
    """``[C, D]`` unit class embeddings: normalise, average over templates, renormalise."""
    if not class_names or not templates:
        raise ValueError("zero-shot needs at least one class name and one template")
    for t in templates:
        if "{}" not in t:
            raise ValueError(f"prompt template {t!r} has no '{{}}' for the class name")
    rows = []
    for name in class_names:
        emb = torch.as_tensor(embed_texts([t.format(name) for t in templates])).float()
        emb = torch.nn.functional.normalize(emb, dim=-1).mean(dim=0)
        rows.append(torch.nn.functional.normalize(emb, dim=-1))
    return torch.stack(rows)


class ZeroShotAccuracy(ClassificationReport):
    """Top-1/top-5 accuracy and mean per-class recall of zero-shot predictions.

    ``update(image_embeddings [B, D], targets [B])`` against fixed class
    embeddings (from :func:`class_embeddings`).
    """

    def __init__(self, class_embeddings: torch.Tensor, top_k: Sequence[int] = (1, 5), **kwargs):
        super().__init__(num_classes=class_embeddings.shape[0], top_k=top_k, **kwargs)
        self.class_embeddings = torch.nn.functional.normalize(class_embeddings.float(), dim=-1)

    def update(self, image_embeddings: torch.Tensor, targets: torch.Tensor) -> None:  # type: ignore[override]
        img = torch.nn.functional.normalize(image_embeddings.float(), dim=-1)
        super().update(img @ self.class_embeddings.to(img.device).T, targets)

    def compute(self) -> dict[str, torch.Tensor]:
        out = super().compute()
        out["mean_per_class_recall"] = out["balanced_accuracy"]
        return out
