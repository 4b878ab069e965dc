"""Evaluation takes loss and logits from one forward pass, and equals the two-call contract."""

from __future__ import annotations

import pytest
import torch

import models_testkit as kit
from polymodal.model_api import PolymodalModel, build_model
from polymodal_plugins.training.evaluation import evaluate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(kit.experiment().model, kit.context(kit.plugins()))


def test_fusion_classifier_evaluates_with_one_forward_and_same_numbers(model):
    batches = [kit.batch(16, seed=s) for s in range(3)]
    calls = []
    hook = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        got = evaluate(model, batches, torch.device("cpu"))
    finally:
        hook.remove()
    assert len(calls) == len(batches)  # one forward per batch, not loss() + predict()
    with torch.no_grad():  # the two calls of the base contract, by hand
        model.eval()
        loss = sum(float(model.loss(b)[0]) * len(b) for b in batches) / 48
        acc = sum(int((model.predict(b).argmax(-1) == b.targets["label"]).sum()) for b in batches) / 48
    assert got["loss"] == pytest.approx(loss, rel=1e-6) and got["acc"] == acc


def test_default_loss_and_predict_calls_loss_then_predict(model):
    b = kit.batch(8)
    # the base-class default, as a third-party classifier without the override gets it
    loss, logs, logits = PolymodalModel.loss_and_predict(model, b)
    with torch.no_grad():
        assert torch.equal(logits, model.predict(b)) and float(loss) == pytest.approx(float(model.loss(b)[0]))
