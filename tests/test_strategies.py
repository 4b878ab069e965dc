"""Training strategies are a registered kind: listed, validated before training, replaceable."""

from __future__ import annotations

import attrs
import pytest
import torch

import models_testkit as kit
from polymodal import component
from polymodal.errors import ConfigError
from polymodal.experiment import experiment_from_dict
from polymodal.model_api import build_model
from polymodal.plugins import PluginSettings, build_plugin_manager
from polymodal.runner import RunOptions, Runner
from polymodal.suite import expand_suite
from polymodal_plugins.training.data_source import TrainingData
from polymodal_plugins.training.trainer import Trainer, seed_everything


@attrs.frozen
class ScaledParams:
    factor: float = 2.0


class ScaledStrategy:
    """A third-party strategy: the model's loss times ``factor``, counting its calls."""

    calls = 0

    def __init__(self, params: ScaledParams, ctx):
        self.factor = params.factor
        assert ctx.model is not None and ctx.plugins is not None

    def begin_epoch(self, model, epoch, optimizer):
        return "scaled"

    def loss(self, model, batch):
        ScaledStrategy.calls += 1
        loss, logs = model.loss(batch)
        return loss * self.factor, logs

    def state(self):
        return {}

    def load_state(self, state):
        pass


scaled = component("strategies", "scaled", ScaledStrategy, params=ScaledParams, description="Loss times a factor.")


@pytest.fixture(scope="module")
def pm():
    return build_plugin_manager(PluginSettings(), entry_points=True, extra_plugins={"testkit": kit.kit, "scaled": scaled})


def test_builtin_strategies_are_listed_with_their_parameters(pm):
    names = {s.name for s in pm.list("strategies")}
    assert {"joint", "staged", "adversarial", "scaled"} <= names
    assert pm.get("strategies", "staged").parameters() == {"pretrain_epochs": 1, "freeze_epochs": 1,
                                                           "unfreeze_lr_scale": 0.1}
    assert pm.get("strategies", "scaled").parameters() == {"factor": 2.0}


def test_strategy_params_are_checked_with_did_you_mean(pm):
    spec = pm.get("strategies", "adversarial")
    with pytest.raises(ConfigError, match=r"s.toml: train.strategy_params.epsilom: unknown key.*did you mean 'epsilon'"):
        spec.validate_params({"epsilom": 0.1}, "s.toml", "train.strategy_params")
    with pytest.raises(ConfigError, match=r"train.strategy_params.steps: expected an integer, got a string"):
        spec.validate_params({"steps": "three"}, "s.toml", "train.strategy_params")
    with pytest.raises(ConfigError, match=r"mix: expected a fraction"):
        spec.validate_params({"mix": 2.0}, "s.toml", "train.strategy_params")
    assert spec.validate_params({"attack": "fgsm"}).attack == "fgsm"


def test_old_strategy_tables_map_with_a_warning_or_say_what_to_change():
    base = {"data": {"dataset": "x"}, "model": {"name": "m"}}
    with pytest.warns(DeprecationWarning, match=r"\[train.staged\] is deprecated.*\[train.strategy_params\]"):
        cfg = experiment_from_dict({**base, "train": {"strategy": "staged", "staged": {"freeze_epochs": 2}}}, "e.toml")
    assert cfg.train.strategy_params == {"freeze_epochs": 2}
    with pytest.raises(ConfigError, match=r"e.toml: train.mixup: strategy options now go in "
                                          r"\[train.strategy_params\].*'joint'"):
        experiment_from_dict({**base, "train": {"mixup": {"alpha": 0.1}}}, "e.toml")
    # API 1 checkpoints carry every built-in strategy's table whichever ran: they still load.
    with pytest.warns(DeprecationWarning, match=r"\[train.staged\] is ignored"):
        old = experiment_from_dict({**base, "train": {"strategy": "adversarial", "adversarial": {"mix": 0.3},
                                                      "staged": {"freeze_epochs": 1}}}, "checkpoint.json")
    assert old.train.strategy_params == {"mix": 0.3}
    with pytest.raises(ConfigError, match=r"train.optimiser: unknown key.*did you mean 'optimizer'"):
        experiment_from_dict({**base, "train": {"optimiser": {"lr": 0.1}}}, "e.toml")


def test_suite_validation_rejects_bad_strategy_params_before_training(pm, tmp_path):
    suite = expand_suite({
        "defaults": {"data": {"dataset": "shapes"}},
        "runs": {"a": {"model": {"name": "fusion-classifier", "encoders": {"image": {"name": "cnn"}}},
                       "train": {"strategy": "staged", "strategy_params": {"freeze_epoch": 1}}},
                 "b": {"model": {"name": "fusion-classifier", "encoders": {"image": {"name": "cnn"}}},
                       "train": {"strategy": "stagd"}}},
    }, "s.toml")
    with pytest.raises(ConfigError) as info:
        Runner(suite, pm, RunOptions(out=tmp_path / "o")).validate()
    text = str(info.value)
    assert "train.strategy_params.freeze_epoch: unknown key" in text and "did you mean 'freeze_epochs'" in text
    assert "unknown strategy 'stagd'" in text and "did you mean 'staged'" in text
    assert not (tmp_path / "o").exists()


def test_a_third_party_strategy_trains(pm, tmp_path):
    cfg = kit.experiment(None, {"strategy": "scaled", "strategy_params": {"factor": 3.0}, "epochs": 1,
                                "evaluate": False})
    ctx = kit.context(pm)
    seed_everything(0)
    model = build_model(cfg.model, ctx)
    data = TrainingData({"train": kit.dataset(32, seed=1)}, kit.collate, cfg.data, 0)
    before = ScaledStrategy.calls
    trainer = Trainer(cfg, model, ctx, data, tmp_path, plugins=pm, progress=False)
    assert trainer.strategy.factor == 3.0
    trainer.fit()
    assert ScaledStrategy.calls > before


def test_adversarial_training_uses_the_registered_attack(pm):
    from polymodal_plugins.attacks.gradient import PGD
    from polymodal_plugins.training.adversarial import AdversarialStrategy
    from polymodal_plugins.training.strategy_params import AdversarialParams
    from polymodal.strategy import StrategyContext

    model = build_model(kit.experiment().model, kit.context(pm))
    strategy = AdversarialStrategy(AdversarialParams(attack="pgd", steps=2, step_size=0.01, epsilon=0.02),
                                   StrategyContext(model=model, seed=0, plugins=pm))
    attack = strategy.attack.attack
    assert isinstance(attack, PGD) and attack.steps == 2 and attack.step_size == pytest.approx(0.5)
    loss, logs = strategy.loss(model, kit.batch(4))
    assert torch.isfinite(loss) and "adv_loss" in logs
