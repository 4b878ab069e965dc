"""Per-epoch evaluation during training: loss, accuracy, retrieval Recall@K.

These are the figures the training log and results store need to see a model
learn; the full evaluation axes (with their reference-matched metrics) live in
the axis plugins. Accuracy needs the ``classify`` capability; Recall@K the
``embed`` capability with at least two embed fields (the first two are used:
``R@K b->a`` is retrieval of field ``a`` items from field ``b`` queries, e.g.
text -> image). A query's only correct answer is its own pair.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from polymodal.batch import Batch
from polymodal.model_api import PolymodalModel


def recall_at_k(queries: torch.Tensor, items: torch.Tensor, ks: Iterable[int] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries ``i`` whose item ``i`` ranks in the top ``k`` by dot product.

    Ties are broken pessimistically (an item scoring exactly as the true one
    counts as ranked above it), so a constant embedding scores chance, not 1.
    """
    out = {}
    sims = queries @ items.t()
    true = sims.diagonal().unsqueeze(1)
    rank = (sims >= true).sum(1) - 1  # items ranked at least as high, except itself
    for k in ks:
        out[k] = float((rank < k).float().mean()) if len(rank) else float("nan")
    return out


@torch.no_grad()
def evaluate(model: PolymodalModel, batches: Iterable[Batch], device: torch.device,
             autocast: object | None = None) -> dict[str, float]:
    """Average loss plus the task metrics the model's capabilities allow."""
    was_training = model.training
    model.eval()
    caps = model.capabilities
    total_loss, n = 0.0, 0
    correct, counted = 0, 0
    pairs = model.embed_fields[:2] if "embed" in caps and len(model.embed_fields) >= 2 else ()
    embs: dict[str, list[torch.Tensor]] = {f: [] for f in pairs}
    keep: list[torch.Tensor] = []
    for batch in batches:
        batch = batch.to(device)
        bs = len(batch)
        ctx = autocast() if callable(autocast) else _null()
        with ctx:
            loss, _, logits = model.loss_and_predict(batch)  # one forward pass where the model allows
            total_loss += float(loss) * bs
            n += bs
            if logits is not None:
                pred = logits.argmax(-1)
                y = batch.targets[model.config.target].to(pred.device)
                correct += int((pred == y).sum())
                counted += bs
            if pairs:
                for f in pairs:
                    embs[f].append(model.embed(batch, f).float().cpu())
                keep.append((batch.inputs[pairs[0]].present & batch.inputs[pairs[1]].present).cpu())
    model.train(was_training)
    out: dict[str, float] = {"loss": total_loss / max(n, 1)}
    if counted:
        out["acc"] = correct / counted
    if pairs and keep:
        mask = torch.cat(keep)
        a, b = (torch.cat(embs[f])[mask] for f in pairs)
        for k, v in recall_at_k(b, a).items():
            out[f"R@{k} {pairs[1]}->{pairs[0]}"] = v
        for k, v in recall_at_k(a, b).items():
            out[f"R@{k} {pairs[0]}->{pairs[1]}"] = v
        out["retrieval_n"] = float(mask.sum())
    return out


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
