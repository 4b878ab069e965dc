"""retrieval: both directions, figures against an oracle and against brute force, cross-lingual pairs."""

from __future__ import annotations

import pytest
import torch
from axes_models import context, experiment, trained

import polymodal
from polymodal.errors import ConfigError
from polymodal_plugins.axes.retrieval import RetrievalAxis


def test_index_positives_match_brute_force_ranks(tmp_path):
    model, data = trained("dual", str(tmp_path.parent))
    rows = {(r.metric, r.conditions["direction"]): r.value
            for r in RetrievalAxis(positives="index", ks=[1, 5]).run(model, data, context(tmp_path, "retrieval", limit=60))}
    batch = data.collate([data.splits["test"][i] for i in range(60)])
    with torch.no_grad():
        img, txt = model.embed(batch, "image"), model.embed(batch, "text")
    for direction, sims in (("image->text", img @ txt.T), ("text->image", txt @ img.T)):
        # Duplicate captions embed identically, so their scores tie with the positive up to
        # rounding: the figures must lie between "ties in the query's favour" and "ties against".
        best = 1 + (sims > sims.diag()[:, None] + 1e-5).sum(1).double()
        worst = 1 + (sims >= sims.diag()[:, None] - 1e-5).sum(1).double() - 1
        assert float(best.mean()) - 1e-9 <= rows[("mean_rank", direction)] <= float(worst.mean()) + 1e-9
        for k in (1, 5):
            got = rows[(f"recall@{k}", direction)]
            assert float((worst <= k).double().mean()) <= got <= float((best <= k).double().mean())
        assert float((1 / worst).mean()) - 1e-9 <= rows[("mrr", direction)] <= float((1 / best).mean()) + 1e-9
        assert float((best != worst).double().mean()) < 0.2  # ties are the exception


class _Oracle(torch.nn.Module):
    """Embeds sample k of both fields as the same one-hot vector: perfect retrieval."""

    embed_fields = ("image", "text")

    def embed(self, batch, field):
        idx = torch.tensor([int(str(i).rsplit("-", 1)[1]) for i in batch.ids])
        return torch.nn.functional.one_hot(idx, 512).float()


def test_oracle_is_perfect_and_trained_model_beats_chance(tmp_path):
    model, data = trained("dual", str(tmp_path.parent))
    ctx = context(tmp_path, "retrieval", limit=120)
    oracle = {(r.metric, r.conditions["direction"]): r.value
              for r in RetrievalAxis(positives="index").run(_Oracle(), data, ctx)}
    assert oracle[("recall@1", "image->text")] == 1.0 and oracle[("recall@1", "text->image")] == 1.0
    assert oracle[("mean_rank", "text->image")] == 1.0 and oracle[("map", "image->text")] == 1.0
    ctx.take_artifacts()

    rows = list(RetrievalAxis(ks=[1, 5, 10]).run(model, data, ctx))
    got = {(r.metric, r.conditions["direction"]): r for r in rows}
    assert {d for _, d in got} == {"image->text", "text->image"}
    for d in ("image->text", "text->image"):
        recalls = [got[(f"recall@{k}", d)].value for k in (1, 5, 10)]
        assert recalls == sorted(recalls)
        extra = got[("recall@10", d)].extra
        chance = 10 * extra["queries"] / extra["candidates"] / 120 * 1.5  # generous: duplicates add positives
        assert recalls[2] > 2 * chance  # trained a few epochs: far better than random ranking
        assert got[("recall@5", d)].conditions["k"] == 5
    examples = [a for a in ctx.take_artifacts() if a["kind"] == "retrieval_example"]
    assert len(examples) == 6 and all(len(e["data"]["items"]) == 5 for e in examples)
    assert all("query" in e["data"] for e in examples if e["data"]["direction"] == "text->image")
    assert all((tmp_path / e["path"]).exists() for e in examples if e["data"]["direction"] == "image->text")


@pytest.mark.parametrize(("other", "pair"), [("text_zh", "text-text"), ("audio", "audio-text")])
def test_cross_lingual_and_audio_text_pairs(tmp_path, other, pair):
    from polymodal_plugins.training.trainer import prepare

    config = experiment({"name": "dual-encoder", "encoders": {"text": {"name": "gru"}, other: {
        "name": "gru" if other == "text_zh" else "audio"}}, "params": {"embed_dim": 16}}, samples=64)
    model, _ctx, data = prepare(config, polymodal.get_plugins(), "<pairs>")
    model.eval()
    rows = list(RetrievalAxis(ks=[1]).run(model, data, context(tmp_path, "retrieval", limit=40)))
    directions = {r.conditions["direction"] for r in rows}
    first = model.embed_fields[0]
    assert directions == {f"{first}->{model.embed_fields[1]}", f"{model.embed_fields[1]}->{first}"}
    assert {r.conditions["modality"] for r in rows} == {pair, "-".join(reversed(pair.split("-")))}
    assert all(1.0 <= r.value <= 40 for r in rows if r.metric == "mean_rank")


def test_unknown_pair_field_is_a_config_error(tmp_path):
    model, data = trained("dual", str(tmp_path.parent))
    with pytest.raises(ConfigError, match="does not embed field 'audio'"):
        list(RetrievalAxis(pairs=[["image", "audio"]]).run(model, data, context(tmp_path, "retrieval", limit=8)))
