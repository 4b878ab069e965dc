"""Image captioning: a CNN over the image, an LSTM decoder that attends to it.

The architecture is "show, attend and tell": a convolutional encoder turns the
image into a grid of spatial feature vectors; at every decoding step an
LSTM cell receives the previous word and a context vector computed by additive
(Bahdanau) attention of its hidden state over the grid. Training uses teacher
forcing; decoding is greedy or beam search. The attention weights of every
generated word are kept, so the interpretability axis can draw where the
model looked when it said "red" or "circle".

:class:`CaptionNet` is the tensor-level network (images and token ids in,
logits and token ids out); :class:`Captioner` adapts it to the platform's
model interface (a :class:`~polymodal.batch.Batch` in, strings out). Any
registered encoder that yields spatial tokens can replace the default CNN
(``[model.encoders.<image field>]``).

Two ids are added after the text field's vocabulary, BOS (``vocab_size``)
and EOS (``vocab_size + 1``), so the model never depends on how the text
modality marks sentence boundaries.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import nn
from torch.nn import functional as F

from polymodal.batch import Batch, Features, ModalityBatch
from polymodal.errors import DataError
from polymodal.model_api import ModelConfig
from polymodal.model_api import LossOutput, ModelContext, PolymodalModel
from polymodal_plugins.models.generative_fields import Vocabulary, pick_field
from polymodal_plugins.models.params import CaptionerParams


class SpatialCNN(nn.Module):
    """A small convolutional encoder: ``[B, C, H, W]`` -> ``[B, h*w, dim]`` spatial tokens.

    ``depth`` stride-2 stages halve the resolution each; the last grid is kept
    (not pooled) because the decoder attends over it.
    """

    def __init__(self, channels: int = 3, dim: int = 128, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(depth):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
                       nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU()]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.to_tokens = nn.Conv2d(c_in, dim, 1)
        self.output_dim = dim
        self.grid: tuple[int, int] | None = None

    def forward(self, batch: ModalityBatch | torch.Tensor) -> Features:
        images = batch.data if isinstance(batch, ModalityBatch) else batch
        if images.dim() != 4:
            raise DataError(f"image encoder expects images [batch, channels, height, width], got {tuple(images.shape)}")
        grid = self.to_tokens(self.body(images))  # [B, D, h, w]
        self.grid = (int(grid.shape[2]), int(grid.shape[3]))
        tokens = grid.flatten(2).transpose(1, 2)
        present = batch.present if isinstance(batch, ModalityBatch) else torch.ones(images.shape[0], dtype=torch.bool, device=images.device)
        return Features(tokens, present[:, None].expand(-1, tokens.shape[1]).clone())


class AdditiveAttention(nn.Module):
    """Bahdanau attention ``v . tanh(W_f f + W_h h)`` over masked feature positions."""

    def __init__(self, feat_dim: int, hidden: int, attn_dim: int) -> None:
        super().__init__()
        self.feat = nn.Linear(feat_dim, attn_dim)
        self.hid = nn.Linear(hidden, attn_dim)
        self.score = nn.Linear(attn_dim, 1)

    def forward(self, feats: torch.Tensor, proj: torch.Tensor, mask: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.score(torch.tanh(proj + self.hid(h).unsqueeze(1))).squeeze(-1)  # [B, T]
        e = e.masked_fill(~mask, float("-inf"))
        has_any = mask.any(dim=1, keepdim=True)
        # A sample without image features attends to nothing (zero context) instead of NaN.
        alpha = torch.softmax(torch.where(has_any, e, torch.zeros_like(e)), dim=1) * has_any
        return torch.bmm(alpha.unsqueeze(1), feats).squeeze(1), alpha


@attrs.frozen
class Decoded:
    """Generated token ids (without BOS/EOS) and, per generated token, attention ``[T]``."""

    ids: list[list[int]]
    attention: list[torch.Tensor]  # each [steps, T]
    scores: list[float]


class CaptionNet(nn.Module):
    """Attention LSTM decoder over spatial image tokens.

    :param vocab_size: size of the caption vocabulary (BOS/EOS are added after it).
    :param feat_dim: size of the image tokens.
    :param pad_id: padding id of the caption tokens (never predicted as a target).
    """

    def __init__(self, vocab_size: int, feat_dim: int, *, pad_id: int = 0, embed_dim: int = 128,
                 hidden: int = 256, attn_dim: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.bos_id, self.eos_id = vocab_size, vocab_size + 1
        self.pad_id = pad_id
        n_out = vocab_size + 2
        self.embed = nn.Embedding(n_out, embed_dim)
        self.attention = AdditiveAttention(feat_dim, hidden, attn_dim)
        self.init_h = nn.Linear(feat_dim, hidden)
        self.init_c = nn.Linear(feat_dim, hidden)
        self.cell = nn.LSTMCell(embed_dim + feat_dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden + feat_dim + embed_dim, n_out)

    # -- pieces ------------------------------------------------------------------
    def start(self, feats: Features) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Initial LSTM state from the mean image feature, and the projected features."""
        pooled = feats.pooled()
        return torch.tanh(self.init_h(pooled)), torch.tanh(self.init_c(pooled)), self.attention.feat(feats.tokens)

    def step(self, prev: torch.Tensor, h: torch.Tensor, c: torch.Tensor, feats: Features,
             proj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoding step: ``(logits [B, V+2], h, c, attention [B, T])``."""
        emb = self.embed(prev)
        context, alpha = self.attention(feats.tokens, proj, feats.mask, h)
        h, c = self.cell(torch.cat([emb, context], dim=-1), (h, c))
        logits = self.out(self.drop(torch.cat([h, context, emb], dim=-1)))
        return logits, h, c, alpha

    def targets(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder inputs ``[BOS, w1..wn]`` and targets ``[w1..wn, EOS]`` (``-100`` = ignore)."""
        if tokens.shape != mask.shape or tokens.dim() != 2:
            raise DataError(f"caption tokens and mask must both be [batch, length], got {tuple(tokens.shape)} and {tuple(mask.shape)}")
        mask = mask.bool()
        # Left-align the real tokens (a stable sort keeps their order) so padding may be anywhere.
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
        tokens, mask = tokens.gather(1, order), mask.gather(1, order)
        if ((tokens >= self.vocab_size) | (tokens < 0))[mask].any():
            bad = int(tokens[mask][(tokens[mask] >= self.vocab_size) | (tokens[mask] < 0)][0])
            raise DataError(f"caption token id {bad} is outside the vocabulary (size {self.vocab_size})")
        b, n = tokens.shape
        lengths = mask.sum(1)
        ignore = torch.full((b, n + 1), -100, dtype=torch.long, device=tokens.device)
        tgt = torch.where(torch.cat([mask, mask.new_zeros(b, 1)], 1), torch.cat([tokens, tokens.new_zeros(b, 1)], 1), ignore)
        tgt[torch.arange(b, device=tokens.device), lengths] = self.eos_id
        inp = torch.cat([torch.full((b, 1), self.bos_id, dtype=torch.long, device=tokens.device),
                         torch.where(mask, tokens, torch.full_like(tokens, self.pad_id))], dim=1)
        return inp, tgt

    # -- training ----------------------------------------------------------------
    def forward(self, feats: Features, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing: ``(logits [B, L+1, V+2], targets [B, L+1], attention [B, L+1, T])``."""
        inp, tgt = self.targets(tokens, mask)
        h, c, proj = self.start(feats)
        logits, alphas = [], []
        for t in range(inp.shape[1]):
            lg, h, c, a = self.step(inp[:, t], h, c, feats, proj)
            logits.append(lg)
            alphas.append(a)
        return torch.stack(logits, 1), tgt, torch.stack(alphas, 1)

    def loss(self, feats: Features, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean token cross-entropy over real tokens and the final EOS, samples without an image excluded."""
        logits, tgt, _ = self(feats, tokens, mask)
        tgt = torch.where(feats.present.unsqueeze(1), tgt, torch.full_like(tgt, -100))
        if not (tgt != -100).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)

    # -- decoding ----------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, feats: Features, max_len: int = 20) -> Decoded:
        b = feats.tokens.shape[0]
        h, c, proj = self.start(feats)
        prev = torch.full((b,), self.bos_id, dtype=torch.long, device=feats.tokens.device)
        ids: list[list[int]] = [[] for _ in range(b)]
        att: list[list[torch.Tensor]] = [[] for _ in range(b)]
        scores = [0.0] * b
        done = [False] * b
        for _ in range(max_len):
            logits, h, c, alpha = self.step(prev, h, c, feats, proj)
            logp = torch.log_softmax(logits[:, : self.eos_id + 1], dim=-1)
            logp[:, self.bos_id] = float("-inf")  # BOS is never generated
            best = logp.argmax(-1)
            for i in range(b):
                if done[i]:
                    continue
                scores[i] += float(logp[i, best[i]])
                if int(best[i]) == self.eos_id:
                    done[i] = True
                else:
                    ids[i].append(int(best[i]))
                    att[i].append(alpha[i].cpu())
            if all(done):
                break
            prev = best
        return Decoded(ids, [_stack(a, feats.tokens.shape[1]) for a in att], scores)

    @torch.no_grad()
    def beam_search(self, feats: Features, max_len: int = 20, beam_size: int = 3, length_penalty: float = 0.0) -> Decoded:
        """Beam search with summed log-probabilities; the final choice divides by ``len ** length_penalty``.

        With ``beam_size == 1`` and no length penalty this is exactly greedy decoding.
        """
        out_ids, out_att, out_scores = [], [], []
        for i in range(feats.tokens.shape[0]):
            one = Features(feats.tokens[i : i + 1].expand(beam_size, -1, -1), feats.mask[i : i + 1].expand(beam_size, -1))
            ids, att, score = self._beam_one(one, max_len, beam_size, length_penalty)
            out_ids.append(ids)
            out_att.append(att)
            out_scores.append(score)
        return Decoded(out_ids, out_att, out_scores)

    def _beam_one(self, feats: Features, max_len: int, k: int, alpha_len: float) -> tuple[list[int], torch.Tensor, float]:
        device = feats.tokens.device
        h, c, proj = self.start(feats)
        prev = torch.full((k,), self.bos_id, dtype=torch.long, device=device)
        scores = torch.full((k,), float("-inf"), device=device)
        scores[0] = 0.0  # all beams start identical: keep one to avoid k copies of the same hypothesis
        seqs: list[list[int]] = [[] for _ in range(k)]
        atts: list[list[torch.Tensor]] = [[] for _ in range(k)]
        finished: list[tuple[float, float, list[int], list[torch.Tensor]]] = []

        def ranked(score: float, n: int) -> float:
            return score / max(n, 1) ** alpha_len if alpha_len else score

        for step in range(max_len):
            logits, h, c, alpha = self.step(prev, h, c, feats, proj)
            logp = torch.log_softmax(logits[:, : self.eos_id + 1], dim=-1)
            logp[:, self.bos_id] = float("-inf")
            cand = (scores.unsqueeze(1) + logp).flatten()
            top = torch.topk(cand, min(2 * k, cand.numel()))
            width = logp.shape[1]
            keep_beam, keep_tok, keep_score = [], [], []
            for s, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                if math.isinf(s):
                    break
                beam, tok = divmod(flat, width)
                if tok == self.eos_id:
                    finished.append((ranked(s, len(seqs[beam]) + 1), s, list(seqs[beam]), list(atts[beam])))
                else:
                    keep_beam.append(beam)
                    keep_tok.append(tok)
                    keep_score.append(s)
                if len(keep_beam) == k:
                    break
            best_done = max((f[0] for f in finished), default=float("-inf"))
            # Summed log-probs only fall, so once a finished hypothesis beats every live one we are done.
            if not keep_beam:
                break
            if finished and (best_done >= max(keep_score) if alpha_len == 0 else len(finished) >= k):
                break
            idx = torch.tensor(keep_beam, device=device)
            seqs = [seqs[b] + [t] for b, t in zip(keep_beam, keep_tok, strict=True)]
            atts = [atts[b] + [alpha[b].cpu()] for b in keep_beam]
            n = len(keep_beam)
            pad = k - n
            h, c = h[idx], c[idx]
            prev = torch.tensor(keep_tok, device=device)
            scores = torch.tensor(keep_score, device=device)
            if pad:
                h, c = torch.cat([h, h[:1].expand(pad, -1)]), torch.cat([c, c[:1].expand(pad, -1)])
                prev = torch.cat([prev, prev[:1].expand(pad)])
                scores = torch.cat([scores, scores.new_full((pad,), float("-inf"))])
                seqs += [[]] * pad
                atts += [[]] * pad
            if step == max_len - 1:
                for b in range(n):
                    finished.append((ranked(float(scores[b]), len(seqs[b])), float(scores[b]), seqs[b], atts[b]))
        if not finished:
            finished.append((float(scores[0]), float(scores[0]), seqs[0], atts[0]))
        _, raw, ids, att = max(finished, key=lambda f: f[0])
        return ids, _stack(att, feats.tokens.shape[1]), raw


def _stack(att: list[torch.Tensor], t: int) -> torch.Tensor:
    return torch.stack(att) if att else torch.zeros(0, t)


class Captioner(PolymodalModel):
    """Model plugin ``captioner``: image field -> caption of the text field.

    ``model.params`` are :class:`polymodal_plugins.models.params.CaptionerParams`,
    validated by :func:`polymodal.model_api.build_model` and read as ``ctx.params``.
    """

    def __init__(self, config: ModelConfig, ctx: ModelContext) -> None:
        super().__init__(config, ctx)
        p: CaptionerParams = ctx.params
        image = pick_field(config, ctx, "image_field", "image", p.image_field)
        text = pick_field(config, ctx, "caption_field", "text", p.caption_field)
        self.image_field, self.caption_field = image.name, text.name
        self.vocab = Vocabulary.from_field(text, ctx.source)
        if image.name in config.encoders:
            self.encoders[image.name] = ctx.build_encoder(image.name, config.encoders[image.name])
        else:
            self.encoders[image.name] = SpatialCNN(
                channels=int(image.params.get("channels", 3)),
                dim=p.feature_dim, width=p.cnn_width, depth=p.cnn_depth,
            )
        self.net = CaptionNet(
            self.vocab.size, self.encoders[image.name].output_dim, pad_id=self.vocab.pad_id,
            embed_dim=p.embed_dim, hidden=p.hidden, attn_dim=p.attn_dim, dropout=p.dropout,
        )
        self.max_len = p.max_len
        self.beam_size = p.beam_size
        self.length_penalty = p.length_penalty
        self.last: Decoded | None = None

    def _features(self, batch: Batch) -> Features:
        return self.encode(batch, (self.image_field,))[self.image_field]

    def _caption_tokens(self, batch: Batch) -> ModalityBatch:
        if self.caption_field not in batch.inputs:
            raise DataError(f"batch has no caption field {self.caption_field!r} (fields: {', '.join(sorted(batch.inputs))})")
        mb = batch.inputs[self.caption_field]
        if mb.mask.dim() != 2:
            raise DataError(f"caption field {self.caption_field!r} must be token ids [batch, length] with a [batch, length] mask")
        return mb

    def loss(self, batch: Batch) -> LossOutput:
        tokens = self._caption_tokens(batch)
        ids = tokens.data.long()
        # The text modality's own markers (BOS/EOS/...) are not words to learn: the decoder has its own.
        specials = torch.tensor(sorted(self.vocab.special_ids), device=ids.device)
        loss = self.net.loss(self._features(batch), ids, tokens.mask.bool() & ~torch.isin(ids, specials))
        return loss, {"loss": float(loss.detach()), "perplexity": float(loss.detach().exp())}

    @torch.no_grad()
    def caption_ids(self, batch: Batch, *, max_len: int | None = None, beam_size: int | None = None) -> Decoded:
        """Token ids of the generated captions, keeping per-word attention in ``self.last``."""
        feats = self._features(batch)
        beam = beam_size or self.beam_size
        n = max_len or self.max_len
        decoded = (self.net.greedy(feats, n) if beam == 1 and not self.length_penalty
                   else self.net.beam_search(feats, n, beam, self.length_penalty))
        self.last = decoded
        return decoded

    def caption(self, batch: Batch, *, max_len: int = 20, beam_size: int = 1) -> list[str]:
        return [self.vocab.decode(ids) for ids in self.caption_ids(batch, max_len=max_len, beam_size=beam_size).ids]

    def interpretation(self) -> dict[str, Any]:
        """Attention of the last ``caption`` call: per sample ``[words, h, w]`` when the
        encoder's grid is known (or square), else ``[words, T]``."""
        if self.last is None:
            return {}
        grid = getattr(self.encoders[self.image_field], "grid", None)
        maps = []
        for att in self.last.attention:
            t = att.shape[-1]
            side = math.isqrt(t)
            shape = grid if grid and grid[0] * grid[1] == t else ((side, side) if side * side == t else None)
            maps.append(att.reshape(att.shape[0], *shape) if shape else att)
        return {"attention": maps, "token_ids": self.last.ids}
