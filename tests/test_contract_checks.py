"""The contract checkers of polymodal.testing: built-ins pass them, broken components are caught by name."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torchmetrics import Metric

import polymodal
from polymodal.batch import Features
from polymodal.testing import (
    ContractError,
    check_axis_rows,
    check_encoder,
    check_fusion,
    check_metric,
    check_modality,
)

FUSIONS = ["concat", "weighted", "attention", "bilinear", "tensor", "low-rank-tensor", "gmu"]


@pytest.mark.parametrize("name", FUSIONS)
def test_every_fusion_passes_the_fusion_checker(name: str) -> None:
    spec = polymodal.get_plugins().get("fusions", name)
    check_fusion(spec.load())


def test_built_in_modalities_and_encoders_pass_their_checkers() -> None:
    plugins = polymodal.get_plugins()
    image = plugins.build("modalities", "image", size=16)
    batch = check_modality(image, [torch.rand(16, 16, 3).numpy() * 255, torch.rand(20, 12, 3).numpy() * 255])
    check_encoder(plugins.get("encoders", "cnn").load(), batch, width=8, depth=2, output_dim=16)
    text = plugins.build("modalities", "text")
    captions = ["a red circle", "a small blue square on the left"]
    text.fit(captions)
    tb = check_modality(text, captions)
    check_encoder(plugins.get("encoders", "gru").load(), tb, vocab_size=text.vocab_size, output_dim=16)


def test_built_in_and_contrib_metrics_pass_the_metric_checker() -> None:
    plugins = polymodal.get_plugins()
    g = torch.Generator().manual_seed(0)
    updates = [(torch.randn(6, 4, generator=g), torch.randint(0, 4, (6,), generator=g)) for _ in range(3)]
    figures = check_metric(plugins.get("metrics", "classification").load(), updates, num_classes=4, top_k=(1, 2))
    assert set(figures) >= {"accuracy", "macro_f1"}
    pairs = [(torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)) for _ in range(3)]
    check_metric(plugins.get("metrics", "modality-gap").load(), pairs)
    captions = [(["a red circle"], [["a red circle", "red circle"]]), (["blue square"], [["a blue square"]]),
                (["a green star"], [["green triangle"]])]
    check_metric(plugins.get("metrics", "bleu").load(), captions)
    shards = [(torch.randn(4, 8, generator=g), torch.arange(4) + 4 * i, torch.randn(4, 8, generator=g),
               torch.arange(4) + 4 * i) for i in range(2)]
    figures = check_metric(plugins.get("metrics", "retrieval").load(), shards, ks=(1, 5))  # headline_figures too
    assert {"text_to_image_recall@1", "image_to_text_recall@1"} <= set(figures)


class LeakyFusion(nn.Module):
    """Mean over all tokens, padding included: the classic masking bug."""

    def __init__(self, input_dims: dict[str, int]) -> None:
        super().__init__()
        self.output_dim = sum(input_dims.values())
        self.dims = input_dims

    def forward(self, features: dict[str, Features]) -> torch.Tensor:
        return torch.cat([features[m].tokens.mean(1) for m in sorted(self.dims)], -1)

    def interpretation(self) -> dict[str, torch.Tensor]:
        return {}


class BatchMeanAccuracy(Metric):
    """Averages per-batch accuracies in a plain attribute: wrong across ranks twice over."""

    higher_is_better = True

    def __init__(self) -> None:
        super().__init__()
        self.add_state("n", torch.tensor(0.0), dist_reduce_fx="sum")
        self.batch_means: list[float] = []

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        self.n += 1
        self.batch_means.append(float((scores.argmax(-1) == targets).float().mean()))

    def compute(self) -> torch.Tensor:
        return torch.tensor(sum(self.batch_means) / max(len(self.batch_means), 1))


class MeanOfMeans(Metric):
    higher_is_better = True

    def __init__(self) -> None:
        super().__init__()
        self.add_state("mean", torch.tensor(0.0), dist_reduce_fx="mean")

    def update(self, values: torch.Tensor) -> None:
        self.mean = values.float().mean()  # the last batch's mean: merging gives the mean of two

    def compute(self) -> torch.Tensor:
        return self.mean


class MisnamedHeadline(Metric):
    """Declares a headline figure its ``compute()`` does not return."""

    higher_is_better = True
    headline_figures = ("mean_value",)

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor) -> None:
        self.total += values.sum()

    def compute(self) -> dict:
        return {"total": self.total}


def test_checkers_name_the_broken_promise() -> None:
    with pytest.raises(ContractError, match="fusion LeakyFusion: missing modality: finite outputs"):
        check_fusion(LeakyFusion)
    updates = [(torch.eye(3), torch.tensor([0, 1, 1])), (torch.eye(3), torch.tensor([0, 0, 0]))]
    with pytest.raises(ContractError, match=r"distributed-safe states: update\(\) changed plain attributes"):
        check_metric(BatchMeanAccuracy, updates)
    with pytest.raises(ContractError, match="distributed merge"):
        check_metric(MeanOfMeans, [(torch.tensor([1.0, 2.0]),), (torch.tensor([5.0]),), (torch.tensor([0.0]),)])
    with pytest.raises(ContractError, match="headline_figures: keys of compute"):
        check_metric(MisnamedHeadline, [(torch.tensor([1.0, 2.0]),), (torch.tensor([5.0]),)])
    from polymodal.results import ResultRow

    with pytest.raises(ContractError, match="is repeated"):
        check_axis_rows([ResultRow("x", "acc", 0.5), ResultRow("x", "acc", 0.7)], "x")
    with pytest.raises(ContractError, match="finite float"):
        check_axis_rows([ResultRow("x", "acc", float("nan"))], "x")


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_built_in_attacks_pass_the_attack_checker(name: str) -> None:
    from polymodal.testing import check_attack

    for norm in ("linf", "l2"):
        check_attack(polymodal.get_plugins().build("attacks", name, norm=norm), norm=norm)


def test_built_in_datasets_and_a_model_pass_their_checkers(tmp_path) -> None:
    from polymodal.batch import Batch, ModalityBatch
    from polymodal.experiment import experiment_from_dict
    from polymodal.model_api import FieldInfo, ModelContext, TargetInfo, build_model
    from polymodal.testing import check_dataset, check_model

    plugins = polymodal.get_plugins()
    check_dataset(plugins.build("datasets", "shapes", root=str(tmp_path), split="train", num_samples=16,
                                image_size=16))
    for fusion in ("concat", "attention"):
        config = experiment_from_dict({"data": {"dataset": "shapes"}, "model": {
            "name": "fusion-classifier", "fusion": fusion, "encoders": {
                "image": {"name": "cnn", "params": {"width": 8, "depth": 2, "output_dim": 16}},
                "audio": {"name": "cnn", "params": {"width": 8, "depth": 2, "output_dim": 16}}}}}).model
        ctx = ModelContext(plugins, fields={f: FieldInfo(f, "image", {"channels": 3}) for f in ("image", "audio")},
                           targets={"label": TargetInfo("label", num_classes=3)})
        batch = Batch({f: ModalityBatch(torch.rand(4, 3, 16, 16), torch.ones(4, dtype=torch.bool))
                       for f in ("image", "audio")}, {"label": torch.tensor([0, 1, 2, 0])})
        check_model(build_model(config, ctx), batch)


class OverBudget:
    def __call__(self, loss_fn, inputs, *, epsilon, generator=None, device="cpu"):
        return {k: torch.full(tuple(s.shape), 2 * epsilon) for k, s in inputs.items()}


def test_attack_and_dataset_checkers_name_the_broken_promise() -> None:
    from polymodal.testing import check_attack, check_dataset

    with pytest.raises(ContractError, match="inside the linf ball"):
        check_attack(OverBudget())

    class NoIds:
        fields, targets = {"image": "image"}, ["label"]

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"image": "a.png", "label": 0}

    with pytest.raises(ContractError, match="a unique 'id'"):
        check_dataset(NoIds())


@pytest.fixture(scope="module")
def strategy_setup():
    import models_testkit as kit
    from polymodal.model_api import build_model

    pm = kit.plugins()
    ctx = kit.context(pm, ("image", "text"))
    return pm, ctx, build_model(kit.experiment().model, ctx), kit.batch(4)


@pytest.mark.parametrize("name", ["joint", "staged", "adversarial"])
def test_built_in_strategies_pass_the_strategy_checker(name: str, strategy_setup) -> None:
    from polymodal.strategy import StrategyContext
    from polymodal.testing import check_strategy

    pm, ctx, model, batch = strategy_setup
    spec = pm.get("strategies", name)
    params = spec.validate_params({"steps": 1} if name == "adversarial" else {}, "test", "train.strategy_params")
    flags = [p.requires_grad for p in model.parameters()]
    check_strategy(spec.load(), model, batch, params=params,
                   ctx=StrategyContext(model=model, seed=0, fields=dict(ctx.fields), plugins=pm))
    assert [p.requires_grad for p in model.parameters()] == flags  # staged's freezing is undone


class _Joint:
    def __init__(self, params, ctx):
        self.generator = torch.Generator().manual_seed(ctx.seed)

    def begin_epoch(self, model, epoch, optimizer):
        return "joint"

    def loss(self, model, batch):
        return model.loss(batch)

    def state(self):
        return {"generator": self.generator.get_state()}

    def load_state(self, state):
        self.generator.set_state(state["generator"])


class _GlobalRandom(_Joint):
    def loss(self, model, batch):
        loss, logs = model.loss(batch)
        return loss * (1 + torch.rand(())), logs


class _NumpyState(_Joint):
    def state(self):
        import numpy as np

        return {"generator": np.random.default_rng(0).bit_generator.state, "array": np.zeros(2)}


class _NotResumable(_Joint):
    def loss(self, model, batch):
        loss, logs = model.loss(batch)
        return loss * (1 + torch.rand((), generator=self.generator)), logs

    def state(self):
        return {}

    def load_state(self, state):
        pass


class _Detached(_Joint):
    def loss(self, model, batch):
        loss, logs = model.loss(batch)
        return loss.detach(), logs


class _InPlace(_Joint):
    def loss(self, model, batch):
        batch.inputs["text"].mask = torch.zeros_like(batch.inputs["text"].mask)
        return model.loss(batch)


class _NoPhase(_Joint):
    def begin_epoch(self, model, epoch, optimizer):
        return None


def test_strategy_checker_names_the_broken_promise(strategy_setup) -> None:
    from polymodal.testing import check_strategy

    _, _, model, batch = strategy_setup
    check_strategy(_Joint, model, batch)
    for cls, promise in [(_GlobalRandom, "determinism: the same ctx.seed"), (_NumpyState, "state(): tensors"),
                         (_NotResumable, "load_state(state()): a fresh strategy"),
                         (_Detached, "loss(): a loss attached to the graph"),
                         (_NoPhase, "begin_epoch(epoch=0): a non-empty phase name"),
                         (_InPlace, "loss(): the caller's batch left unchanged")]:
        with pytest.raises(ContractError, match=rf"strategy {cls.__name__}: {re.escape(promise)}"):
            check_strategy(cls, model, batch.to("cpu"))  # a copy: _InPlace changes its batch
