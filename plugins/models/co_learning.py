"""Co-learning: one classifier per field, trained together.

``L = mean_f CE(head_f(enc_f(x_f)), y) + lambda * L_sim`` where ``L_sim`` is
the mean, over every pair of fields present in a sample, of the symmetric KL
divergence between the two classifiers' predicted distributions, each side
taught by the other's (detached) prediction as in deep mutual learning. The
similarity term lets a strong modality teach a weak one during training; at
test time each unimodal classifier works alone (``predict`` averages the
fields the batch has, per sample).

Why predictions and not a cosine between feature projections: a cosine
term is minimised by collapsing both projections to one constant vector
(measured: it fell to ~0.007 within one epoch on shapes while teaching
nothing), whereas predictions are anchored by the cross-entropy terms.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.batch import Batch
from polymodal.errors import ConfigError, PolymodalError
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel, build_encoders
from polymodal_plugins.models.heads import mlp_head


class CoLearning(PolymodalModel):
    """Unimodal classifiers sharing a similarity space."""

    def __init__(self, config: ModelConfig, ctx: ModelContext):
        super().__init__(config, ctx)
        build_encoders(self, config, ctx)
        self.num_classes = ctx.num_classes(config)
        self.lam = ctx.params.lambda_
        self.heads = nn.ModuleDict(
            {f: mlp_head(int(e.output_dim), self.num_classes, config.head) for f, e in self.encoders.items()}
        )

    def field_logits(self, batch: Batch, field: str) -> torch.Tensor:
        """Logits of the unimodal classifier of ``field`` alone."""
        if field not in self.heads:
            raise ConfigError(f"{self.source}: co-learning has classifiers for {', '.join(self.heads)}, not {field!r}")
        return self.heads[field](self.encode(batch, (field,))[field].pooled())

    def predict(self, batch: Batch) -> torch.Tensor:
        """Mean of the log-probabilities of the classifiers whose field a sample has."""
        fields = [f for f in self.input_fields if f in batch.inputs]
        if not fields:
            raise PolymodalError(f"batch has none of the fields {', '.join(self.input_fields)}")
        total = None
        count = None
        for f in fields:
            present = batch.inputs[f].present.unsqueeze(-1).float()
            logp = F.log_softmax(self.field_logits(batch, f), dim=-1) * present
            total = logp if total is None else total + logp
            count = present if count is None else count + present
        return total / count.clamp_min(1.0)

    def loss(self, batch: Batch) -> LossOutput:
        y = self.target(batch).long()
        feats = self.encode(batch)
        ce_terms, logs = [], {}
        logp = {}
        for f, feat in feats.items():
            present = feat.present
            logits = self.heads[f](feat.pooled())
            logp[f] = F.log_softmax(logits, dim=-1)
            if bool(present.any()):
                ce = F.cross_entropy(logits[present], y[present])
                ce_terms.append(ce)
                logs[f"acc_{f}"] = float((logits[present].argmax(-1) == y[present]).float().mean())
        if not ce_terms:
            raise PolymodalError("co-learning batch where every field is missing in every sample")
        l_ce = torch.stack(ce_terms).mean()
        sims = []
        for a, b in itertools.combinations(logp, 2):
            both = feats[a].present & feats[b].present
            if bool(both.any()):
                la, lb = logp[a][both], logp[b][both]
                # KL(p_b || p_a) teaches a; KL(p_a || p_b) teaches b; the teacher side is detached.
                kl_a = F.kl_div(la, lb.detach(), log_target=True, reduction="batchmean")
                kl_b = F.kl_div(lb, la.detach(), log_target=True, reduction="batchmean")
                sims.append(0.5 * (kl_a + kl_b))
        l_sim = torch.stack(sims).mean() if sims else l_ce * 0.0
        loss = l_ce + self.lam * l_sim
        logs.update(loss=float(loss.detach()), ce=float(l_ce.detach()), sim=float(l_sim.detach()))
        return loss, logs

    def unimodal_loss(self, batch: Batch, field: str) -> LossOutput:
        y = self.target(batch).long()
        feat = self.encode(batch, (field,))[field]
        present = feat.present
        logits = self.heads[field](feat.pooled())
        if not bool(present.any()):
            return logits.sum() * 0.0, {"loss": 0.0}
        loss = F.cross_entropy(logits[present], y[present])
        return loss, {"loss": float(loss.detach())}

    def stage_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"encoders": list(self.encoders.parameters()), "fusion": list(self.heads.parameters())}
