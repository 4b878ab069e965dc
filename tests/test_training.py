"""The training loop and its strategies on a small learnable task."""

from __future__ import annotations

import json

import pytest
import torch

import models_testkit as kit
from polymodal.checkpoint import load_model
from polymodal.experiment import ScheduleConfig
from polymodal.model_api import build_model
from polymodal_plugins.training.adversarial import AdversarialAttack
from polymodal_plugins.training.data_source import TrainingData
from polymodal_plugins.training.schedule import lr_factor
from polymodal_plugins.training.trainer import Trainer, seed_everything

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pm():
    return kit.plugins()


SPLITS = {"train": kit.dataset(96, seed=1), "val": kit.dataset(48, seed=2), "test": kit.dataset(48, seed=3)}


def make_trainer(pm, out, model=None, train=None, data=None, **kw):
    cfg = kit.experiment(model, train, data)
    ctx = kit.context(pm)
    seed_everything(cfg.train.seed)
    m = build_model(cfg.model, ctx)
    td = TrainingData(SPLITS, kit.collate, cfg.data, cfg.train.seed)
    return Trainer(cfg, m, ctx, td, out, plugins=pm, progress=False, **kw)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_joint_training_learns_and_writes_metrics_and_checkpoint(pm, tmp_path):
    t = make_trainer(pm, tmp_path, {"fusion": "attention", "fusion_params": {"dim": 16, "heads": 2}},
                     {"epochs": 4, "optimizer": {"lr": 1e-2}, "schedule": {"name": "cosine", "warmup_steps": 2}})
    out = t.fit()
    assert out.steps == 4 * 6
    assert out.metrics["test"]["acc"] > 0.9  # chance is 0.25
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val_acc = [r["value"] for r in rows if r["conditions"]["split"] == "val" and r["metric"] == "acc"]
    assert len(val_acc) == 4 and val_acc[-1] > val_acc[0]
    assert {r["conditions"]["epoch"] for r in rows if r["conditions"]["split"] == "train"} == {1, 2, 3, 4}
    loaded = load_model(tmp_path / "checkpoint", pm)
    b = kit.batch(6, seed=9)
    t.model.eval()
    assert torch.equal(loaded.predict(b), t.model.predict(b))
    meta = json.loads((tmp_path / "checkpoint" / "checkpoint.json").read_text())
    assert meta["position"] == {"epoch": 4, "step_in_epoch": 0, "global_step": 24}
    assert meta["versions"]["torch"] == torch.__version__


def test_same_seed_same_weights_and_other_seed_differs(pm, tmp_path):
    train = {"epochs": 1, "max_steps": 4}
    model = {"encoders": {"image": {"name": "tiny-image"}, "text": {"name": "tiny-text", "params": {"dropout": 0.3}}}}
    a = make_trainer(pm, tmp_path / "a", model, train)
    a.fit()
    b = make_trainer(pm, tmp_path / "b", model, train)
    b.fit()
    c = make_trainer(pm, tmp_path / "c", model, {**train, "seed": 1})
    c.fit()
    wa, wb, wc = weights(a.model), weights(b.model), weights(c.model)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


class Interrupted(Exception):
    pass


def test_resume_after_interruption_reaches_the_uninterrupted_weights(pm, tmp_path):
    # Dropout (randomness inside steps), a decaying schedule and mid-epoch checkpoints.
    model = {"encoders": {"image": {"name": "tiny-image"}, "text": {"name": "tiny-text", "params": {"dropout": 0.3}}},
             "head": {"hidden": 8, "layers": 2, "dropout": 0.2}}
    train = {"epochs": 3, "checkpoint_every": 4, "schedule": {"name": "linear"}}
    full = make_trainer(pm, tmp_path / "full", model, train)
    full.fit()

    def crash(step):
        if step == 10:  # two steps after the checkpoint at step 8, mid epoch 2
            raise Interrupted

    broken = make_trainer(pm, tmp_path / "resumed", model, train, on_step=crash)
    with pytest.raises(Interrupted):
        broken.fit()
    resumed = make_trainer(pm, tmp_path / "resumed", model, train)
    out = resumed.fit(resume=True)
    assert out.steps == 18
    wf, wr = weights(full.model), weights(resumed.model)
    assert all(torch.equal(wf[k], wr[k]) for k in wf), [k for k in wf if not torch.equal(wf[k], wr[k])]


def test_resuming_a_finished_run_reads_its_test_figures_instead_of_evaluating_again(pm, tmp_path, monkeypatch):
    """Every suite run (and every torchrun rank) resumes its finished checkpoint: a second test pass was waste."""
    train = {"epochs": 1}
    first = make_trainer(pm, tmp_path, None, train).fit()
    rows = (tmp_path / "metrics.jsonl").read_text()
    evaluated: list[str | None] = []
    monkeypatch.setattr(Trainer, "_eval", lambda self, split: evaluated.append(split))
    again = make_trainer(pm, tmp_path, None, train).fit(resume=True)
    assert evaluated == [] and again.metrics["test"] == first.metrics["test"]
    assert (tmp_path / "metrics.jsonl").read_text() == rows
    # A summary from another position (or none) means the rows may be missing: evaluate as before.
    summary = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "steps": 1}))
    make_trainer(pm, tmp_path, None, train).fit(resume=True)
    assert evaluated == ["test"]


def test_resume_refuses_a_different_model(pm, tmp_path):
    from polymodal import ConfigError

    make_trainer(pm, tmp_path, train={"epochs": 1, "max_steps": 2}).fit()
    other = make_trainer(pm, tmp_path, {"fusion": "weighted"}, {"epochs": 1})
    with pytest.raises(ConfigError, match=r"\[model\] table differs.*fusion"):
        other.fit(resume=True)


def test_staged_freezes_what_it_claims(pm, tmp_path):
    seen = {}

    t = make_trainer(pm, tmp_path, {"fusion": "weighted", "fusion_params": {"dim": 16}},
                     {"strategy": "staged", "epochs": 3,
                      "strategy_params": {"pretrain_epochs": 1, "freeze_epochs": 1, "unfreeze_lr_scale": 0.5}},
                     on_step=lambda step: seen.setdefault(step, weights(t.model)))
    groups = t.model.stage_groups()
    names = {id(p): n for n, p in t.model.named_parameters()}
    enc = [names[id(p)] for p in groups["encoders"]]
    fus = [names[id(p)] for p in groups["fusion"]]
    start = weights(t.model)
    t.fit()
    spe = 6
    after_pretrain, after_frozen, end = seen[spe], seen[2 * spe], weights(t.model)
    # Stage 1: encoders (and aux heads) learn; fusion and head untouched.
    assert all(torch.equal(start[n], after_pretrain[n]) for n in fus)
    assert any(not torch.equal(start[n], after_pretrain[n]) for n in enc)
    # Stage 2: encoders frozen; fusion learns.
    assert all(torch.equal(after_pretrain[n], after_frozen[n]) for n in enc)
    assert any(not torch.equal(after_pretrain[n], after_frozen[n]) for n in fus)
    # Stage 3: everything trains, encoders at half the rate.
    assert any(not torch.equal(after_frozen[n], end[n]) for n in enc)
    assert [g["lr_scale"] for g in t.optimizer.param_groups if g["name"] == "encoders"] == [0.5]


def test_staged_keeps_config_frozen_encoder_frozen(pm, tmp_path):
    model = {"encoders": {"image": {"name": "tiny-image"}, "text": {"name": "tiny-text", "frozen": True}}}
    t = make_trainer(pm, tmp_path, model, {"strategy": "staged", "epochs": 3})
    before = weights(t.model.encoders["text"])
    t.fit()
    after = weights(t.model.encoders["text"])
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("attack,norm", [("fgsm", "linf"), ("pgd", "linf"), ("pgd", "l2")])
def test_adversarial_batches_differ_within_epsilon(pm, attack, norm):
    from polymodal.model_api import FieldInfo
    from polymodal_plugins.training.adversarial import build_attack
    from polymodal_plugins.training.strategy_params import AdversarialParams as AdversarialConfig

    cfg = kit.experiment()
    torch.manual_seed(0)
    model = build_model(cfg.model, kit.context(pm))
    eps, teps = 0.03, 0.2
    adv = AdversarialConfig(attack=attack, norm=norm, epsilon=eps, text_epsilon=teps, steps=4)
    fields = {"image": FieldInfo("image", "image", {})}
    b = kit.batch(8)
    pert = AdversarialAttack(adv, build_attack(adv, pm), torch.Generator().manual_seed(0), fields).perturb(model, b)
    d = pert.batch.inputs["image"].data - b.inputs["image"].data
    per_sample = d.flatten(1).abs().amax(1) if norm == "linf" else d.flatten(1).norm(dim=1)
    assert (per_sample <= eps + 1e-6).all() and (per_sample > 0.5 * eps).all()
    assert torch.equal(pert.batch.inputs["text"].data, b.inputs["text"].data)  # ids untouched...
    td = pert.embedding_deltas["text"]  # ...perturbed in embedding space instead
    assert td.shape == (8, kit.SEQ, 16)
    tn = td.flatten(1).abs().amax(1) if norm == "linf" else td.flatten(1).norm(dim=1)
    assert (tn <= teps + 1e-6).all() and (tn > 0).all()
    # The attack does its job: the loss goes up.
    from polymodal.perturb import embedding_offsets

    model.eval()
    with embedding_offsets(model, pert.embedding_deltas):
        adv_loss = float(model.loss(pert.batch)[0].detach())
    assert adv_loss > float(model.loss(b)[0].detach())


def test_adversarial_pixel_units_with_normalised_images(pm):
    from polymodal.model_api import FieldInfo
    from polymodal_plugins.training.adversarial import build_attack
    from polymodal_plugins.training.strategy_params import AdversarialParams as AdversarialConfig

    cfg = kit.experiment()
    torch.manual_seed(0)
    model = build_model(cfg.model, kit.context(pm))
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]
    b = kit.batch(4)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    b.inputs["image"].data = (b.inputs["image"].data - m) / s
    eps = 8 / 255
    adv = AdversarialConfig(attack="pgd", epsilon=eps, steps=3, fields=["image"])
    pert = AdversarialAttack(adv, build_attack(adv, pm), None, {"image": FieldInfo("image", "image", {"mean": mean, "std": std})}).perturb(model, b)
    pix_clean = b.inputs["image"].data * s + m
    pix_adv = pert.batch.inputs["image"].data * s + m
    assert (pix_adv - pix_clean).abs().max() <= eps + 1e-5
    assert pix_adv.min() >= -1e-5 and pix_adv.max() <= 1 + 1e-5


def test_adversarial_training_runs_and_mixes(pm, tmp_path):
    t = make_trainer(pm, tmp_path, train={"strategy": "adversarial", "epochs": 3, "optimizer": {"lr": 1e-2},
                                          "strategy_params": {"attack": "fgsm", "epsilon": 0.05, "mix": 0.5}})
    out = t.fit()
    assert out.metrics["test"]["acc"] > 0.6
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(r["metric"] == "adv_loss" for r in rows)


def test_lr_schedules():
    assert lr_factor(0, 100, ScheduleConfig(name="cosine", warmup_steps=10)) == pytest.approx(0.1)
    assert lr_factor(10, 110, ScheduleConfig(name="cosine", warmup_steps=10)) == pytest.approx(1.0)
    assert lr_factor(60, 110, ScheduleConfig(name="cosine", warmup_steps=10)) == pytest.approx(0.5)
    assert lr_factor(110, 110, ScheduleConfig(name="linear", min_lr_ratio=0.1)) == pytest.approx(0.1)
    assert lr_factor(2500, 10_000, ScheduleConfig(name="step", step_size=1000, gamma=0.5)) == pytest.approx(0.25)


def test_dual_encoder_trains_to_retrieve(pm, tmp_path):
    t = make_trainer(pm, tmp_path, {"name": "dual-encoder", "params": {"embed_dim": 16}},
                     {"epochs": 3, "optimizer": {"lr": 3e-3}})
    out = t.fit()
    # 48 test pairs: chance R@1 is ~1/48, but 4 classes drive content, so 1/12 is the ceiling of
    # "right class, random sample"; well above that shows the pairing is learned beyond class.
    assert out.metrics["test"]["R@5 text->image"] > 0.3


def test_bf16_autocast_on_cpu_trains(pm, tmp_path):
    from polymodal_plugins.training.trainer import autocast_for

    assert autocast_for("auto", torch.device("cpu")) == (None, False)  # fp32 on CPU unless asked
    t = make_trainer(pm, tmp_path, train={"amp": "bf16", "epochs": 2, "optimizer": {"lr": 1e-2}})
    out = t.fit()
    assert out.metrics["test"]["acc"] > 0.5
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # weights stay fp32


def test_recall_at_k_counts_only_the_true_pair_and_ties_pessimistically():
    from polymodal_plugins.training.evaluation import recall_at_k

    items = torch.eye(4)
    queries = torch.eye(4)[[0, 1, 3, 2]]  # queries 2 and 3 point at each other's item
    r = recall_at_k(queries, items, ks=(1, 2))
    assert r[1] == 0.5 and r[2] == 0.5
    const = recall_at_k(torch.ones(4, 2), torch.ones(4, 2), ks=(1, 4))
    assert const[1] == 0.0 and const[4] == 1.0


def test_max_steps_at_an_epoch_boundary_stops_cleanly(pm, tmp_path):
    t = make_trainer(pm, tmp_path, train={"epochs": 5, "max_steps": 12})
    out = t.fit()
    assert out.steps == 12 and out.epochs == 2
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sorted(r["conditions"]["epoch"] for r in rows if r["metric"] == "loss" and r["conditions"]["split"] == "val") == [1, 2]
