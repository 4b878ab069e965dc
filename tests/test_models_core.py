"""Model plugins against the model interface: building, losses, gradients, checkpoints."""

from __future__ import annotations

import itertools

import pytest
import torch

import models_testkit as kit
from polymodal import ConfigError, DataError
from polymodal.batch import Batch, ModalityBatch
from polymodal.checkpoint import load_model, save_checkpoint
from polymodal.experiment import experiment_from_dict, to_dict
from polymodal.model_api import PolymodalModel, build_model

torch.set_num_threads(1)

FIELDS = ("image", "text")
COMBOS = [c for r in (1, 2) for c in itertools.combinations(FIELDS, r)]
ENC = {"image": {"name": "tiny-image"}, "text": {"name": "tiny-text"}, "text_zh": {"name": "tiny-text"}}


@pytest.fixture(scope="module")
def pm():
    return kit.plugins()


def build(pm, **model):
    cfg = kit.experiment(model)
    torch.manual_seed(0)
    return build_model(cfg.model, kit.context(pm)), cfg


@pytest.mark.parametrize("fusion", ["concat", "weighted", "attention"])
@pytest.mark.parametrize("fields", COMBOS, ids=lambda c: "+".join(c))
def test_fusion_classifier_any_combination_gradients_reach_everything(pm, fusion, fields):
    model, _ = build(pm, fusion=fusion, encoders={f: ENC[f] for f in fields})
    b = kit.batch(6)
    loss, logs = model.loss(b)
    assert loss.dim() == 0 and torch.isfinite(loss) and logs["loss"] == pytest.approx(float(loss.detach()))
    loss.backward()
    for part in (*[model.encoders[f] for f in fields], model.fusion, model.head):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        if not grads:  # e.g. concat without a projection has no weights
            continue
        assert any(g is not None and g.abs().sum() > 0 for g in grads), type(part).__name__
    assert model.predict(b).shape == (6, kit.NUM_CLASSES)


@pytest.mark.parametrize("fusion", ["concat", "weighted", "attention"])
def test_missing_modality_rows_do_not_change_other_rows_and_are_finite(pm, fusion):
    model, _ = build(pm, fusion=fusion, encoders={f: ENC[f] for f in FIELDS})
    model.eval()
    b = kit.batch(4)
    text = b.inputs["text"]
    mask = text.mask.clone()
    mask[1] = False  # sample 1 has no text
    garbage = text.data.clone()
    garbage[1] = 7
    missing = Batch({"image": b.inputs["image"], "text": ModalityBatch(garbage, mask)}, b.targets, b.ids)
    out = model.predict(missing)
    assert torch.isfinite(out).all()
    # The text content of a sample whose text is missing cannot matter.
    garbage2 = garbage.clone()
    garbage2[1] = 3
    out2 = model.predict(Batch({"image": b.inputs["image"], "text": ModalityBatch(garbage2, mask)}, b.targets, b.ids))
    torch.testing.assert_close(out, out2)


def test_dual_encoder_embeddings_loss_and_temperature(pm):
    model, _ = build(pm, name="dual-encoder", encoders={"image": ENC["image"], "text": ENC["text"]},
                     params={"embed_dim": 8})
    b = kit.batch(8)
    for f in ("image", "text"):
        z = model.embed(b, f)
        assert z.shape == (8, 8)
        torch.testing.assert_close(z.norm(dim=-1), torch.ones(8))
    loss, logs = model.loss(b)
    za, zb = model.embed(b, "image"), model.embed(b, "text")
    logits = model.logit_scale() * za @ zb.t()
    labels = torch.arange(8)
    expected = 0.5 * (torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.t(), labels))
    torch.testing.assert_close(loss, expected)
    assert model.logit_scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    loss.backward()
    assert model.log_scale.grad is not None and model.log_scale.grad != 0


def test_dual_encoder_text_text_pair_and_bad_pair(pm):
    model, _ = build(pm, name="dual-encoder", encoders={"text": ENC["text"], "text_zh": ENC["text_zh"]})
    assert model.embed_fields == ("text", "text_zh")
    assert torch.isfinite(model.loss(kit.batch(4))[0])
    with pytest.raises(ConfigError, match="model.params.pair"):
        build(pm, name="dual-encoder", encoders={"text": ENC["text"], "image": ENC["image"]},
              params={"pair": ["text", "audio"]})


def test_co_learning_objective_and_unimodal_use(pm):
    model, _ = build(pm, name="co-learning", encoders={f: ENC[f] for f in FIELDS}, params={"lambda": 0.0})
    b = kit.batch(8)
    torch.manual_seed(1)
    loss0, logs0 = model.loss(b)
    model.lam = 2.0
    loss2, logs2 = model.loss(b)
    torch.testing.assert_close(loss2, loss0 + 2.0 * torch.tensor(logs0["sim"]))
    assert logs0["sim"] > 0
    # L_sim is the symmetric KL between the two classifiers' predictions.
    la = torch.log_softmax(model.field_logits(b, "image"), -1)
    lt = torch.log_softmax(model.field_logits(b, "text"), -1)
    kl = 0.5 * ((lt.exp() * (lt - la)).sum(-1).mean() + (la.exp() * (la - lt)).sum(-1).mean())
    assert logs0["sim"] == pytest.approx(float(kl.detach()), rel=1e-5)
    # Each classifier alone: a batch with only the image field.
    only_image = Batch({"image": b.inputs["image"]}, b.targets, b.ids)
    logp = model.predict(only_image)
    torch.testing.assert_close(logp, torch.log_softmax(model.field_logits(b, "image"), -1))
    both = model.predict(b)
    expected = 0.5 * (torch.log_softmax(model.field_logits(b, "image"), -1) + torch.log_softmax(model.field_logits(b, "text"), -1))
    torch.testing.assert_close(both, expected)


@pytest.mark.parametrize("model_cfg", [
    {"fusion": "attention", "fusion_params": {"dim": 12, "heads": 2}, "head": {"hidden": 8, "layers": 2}},
    {"name": "dual-encoder", "params": {"embed_dim": 8}},
    {"name": "co-learning", "params": {"lambda": 0.3}},
], ids=["fusion-classifier", "dual-encoder", "co-learning"])
def test_checkpoint_round_trip_rebuilds_identical_model(pm, tmp_path, model_cfg):
    model, cfg = build(pm, encoders={f: ENC[f] for f in FIELDS}, **model_cfg)
    # Move the weights away from their initialisation so a fresh build would differ.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    ctx = kit.context(pm)
    save_checkpoint(tmp_path / "ck", model, experiment=to_dict(cfg), context=ctx.to_json())
    loaded = load_model(tmp_path / "ck", pm)
    assert type(loaded) is type(model)
    b = kit.batch(5, seed=3)
    if "classify" in type(model).capabilities:
        assert torch.equal(model.predict(b), loaded.predict(b))
    for f in model.embed_fields:
        assert torch.equal(model.embed(b, f), loaded.embed(b, f))


def test_checkpoint_from_another_model_or_truncated_is_a_clear_error(pm, tmp_path):
    model, cfg = build(pm, encoders={f: ENC[f] for f in FIELDS})
    ctx = kit.context(pm)
    save_checkpoint(tmp_path / "ck", model, experiment=to_dict(cfg), context=ctx.to_json())
    other, other_cfg = build(pm, encoders={f: ENC[f] for f in FIELDS}, head={"hidden": 8, "layers": 2})
    save_checkpoint(tmp_path / "other", other, experiment=to_dict(cfg), context=ctx.to_json())
    with pytest.raises(DataError, match=r"does not match the model.*(missing|unexpected|shape)"):
        load_model(tmp_path / "other", pm)
    weights = tmp_path / "ck" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(DataError, match="safetensors"):
        load_model(tmp_path / "ck", pm)
    with pytest.raises(DataError, match="not a polymodal checkpoint"):
        load_model(tmp_path, pm)


def test_config_errors_name_the_key(pm):
    with pytest.raises(ConfigError, match=r"test.toml: model.encoders.audio: the dataset has no input field 'audio'"):
        build(pm, encoders={"audio": {"name": "tiny-image"}})
    with pytest.raises(ConfigError, match=r"fusoin.*did you mean 'fusion'"):
        experiment_from_dict({"data": {"dataset": "x"}, "model": {"name": "m", "fusoin": "concat"}}, "e.toml")
    from polymodal.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match=r"unknown strategy 'stagd'.*did you mean 'staged'"):
        pm.get("strategies", experiment_from_dict({"data": {"dataset": "x"}, "model": {"name": "m"},
                                                   "train": {"strategy": "stagd"}}, "e.toml").train.strategy)
    with pytest.raises(ConfigError, match=r"e.toml: data: batch_size must be a finite number > 0"):
        experiment_from_dict({"data": {"dataset": "x", "batch_size": 0}, "model": {"name": "m"}}, "e.toml")
    from polymodal.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'attention'"):
        build(pm, fusion="atention")


def test_swapping_fusion_is_one_word_and_lambda_round_trips():
    cfg = kit.experiment({"fusion": "weighted", "params": {"lambda": 0.25}})
    assert cfg.model.fusion == "weighted" and cfg.model.params == {"lambda": 0.25}
    again = experiment_from_dict(to_dict(cfg), "x")
    assert again == cfg
    with pytest.warns(DeprecationWarning):
        old = kit.experiment({"lambda": 0.25})
    assert old.model.legacy_params == {"lambda": 0.25} and experiment_from_dict(to_dict(old), "x") == old


def test_every_builtin_model_subclasses_the_interface_and_declares_capabilities(pm):
    from polymodal.model_api import CAPABILITIES

    # Capabilities are open strings; every one a built-in model declares is read by some built-in axis.
    read_by_axes = set(CAPABILITIES)
    for axis_spec in pm.list("axes"):
        axis = axis_spec.build()
        read_by_axes |= set(getattr(axis, "requires", ())) | set(getattr(axis, "requires_any", ()))
    for spec in [s for s in pm.list("models") if s.distribution == "polymodal"]:
        assert spec.capabilities and spec.capabilities <= read_by_axes, spec.name
        cls = spec.load()
        assert issubclass(cls, PolymodalModel), spec.name
        assert "capabilities" not in vars(cls), f"{spec.name}: capabilities are declared once, on the spec"
        assert cls.capabilities == frozenset(), spec.name
