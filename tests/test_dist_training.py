"""DDP training under torchrun equals single-process training on the same global batches.

Plain SGD with momentum keeps the comparison sharp (Adam divides tiny gradients by
their own tiny scale and so amplifies float round-off to ~1e-5). The model is a fusion classifier over a GroupNorm CNN (no BatchNorm: batch
statistics would differ per rank) without dropout, trained with a mean
cross-entropy, so the gradient of the global batch is exactly the
sample-weighted average of the ranks' gradients. 21 samples in batches of 8
end each epoch with a batch of 5 that splits 3/2: the uneven case.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dist_launch import torchrun
from polymodal.errors import ConfigError

CONFIG = """
name = "ddp-probe"
[data]
dataset = "shapes"
params = { num_samples = 21, image_size = 16, frames = 2 }
batch_size = 8
[model]
name = "fusion-classifier"
fusion = "concat"
encoders.image = { name = "cnn", params = { width = 8, depth = 2, output_dim = 16 } }
[train]
epochs = 2
threads = 1
evaluate = false
optimizer = { name = "sgd", lr = 0.05, momentum = 0.9 }
"""


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "checkpoint" / "model.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from polymodal.plugins import build_plugin_manager
    from polymodal_plugins.training.trainer import train_experiment

    root = tmp_path_factory.mktemp("ddp")
    cfg = root / "exp.toml"
    cfg.write_text(CONFIG)
    single = root / "single"
    train_experiment(cfg, out=single, plugins=build_plugin_manager(), progress=False)
    # Two processes: stop after 4 of the 6 steps (mid-epoch 2), then resume under torchrun to the end.
    ddp = root / "ddp"
    torchrun(["train", str(cfg), "--out", str(ddp), "--quiet", "--set", "train.max_steps=4"], cwd=root)
    stopped = _weights(ddp)
    torchrun(["train", str(cfg), "--out", str(ddp), "--quiet", "--resume"], cwd=root)
    return {"single": single, "ddp": ddp, "stopped": stopped}  # type: ignore[dict-item]


@pytest.mark.e2e
def test_ddp_weights_equal_single_process(runs: dict[str, Path]) -> None:
    one, two = _weights(runs["single"]), _weights(runs["ddp"])
    assert one.keys() == two.keys()
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-6, rtol=1e-5), \
            (name, float((one[name] - two[name]).abs().max()))
    # The interrupted state really was mid-training, so the resume did the rest.
    assert any(not torch.allclose(runs["stopped"][k], one[k], atol=1e-4) for k in one)


@pytest.mark.e2e
def test_ddp_writes_one_log_that_reads_like_single_process(runs: dict[str, Path]) -> None:
    import json

    def rows(folder: Path) -> list[dict]:
        return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]

    single, ddp = rows(runs["single"]), rows(runs["ddp"])
    # Rank 0 alone writes; epoch 1 (uninterrupted in both) has a training loss that is the sample-weighted mean over ranks.
    by_epoch = {(r["conditions"]["epoch"], r["metric"]): r["value"] for r in single}
    ddp_last = {(r["conditions"]["epoch"], r["metric"]): r["value"] for r in ddp}
    assert ddp_last[(1, "loss")] == pytest.approx(by_epoch[(1, "loss")], abs=1e-6)
    summary = json.loads((runs["ddp"] / "summary.json").read_text())
    assert summary["steps"] == 6


def test_global_batch_too_small_to_split_is_a_config_error() -> None:
    from polymodal_plugins.training.ddp import RankBatches, rank_part

    class Data:
        def train_order(self, epoch: int) -> list[list[int]]:
            return [[0, 1, 2], [3]]

    batches = RankBatches(Data(), 0, 2)  # type: ignore[arg-type]  # a finished run resumes without drawing any
    with pytest.raises(ConfigError, match="batch_size"):
        batches.train_batches(0)
    parts = [rank_part(list(range(5)), r, 2) for r in range(2)]
    assert parts == [[0, 1, 2], [3, 4]]
    assert sorted(sum((rank_part(list(range(7)), r, 3) for r in range(3)), [])) == list(range(7))
