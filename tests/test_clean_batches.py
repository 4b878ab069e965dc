"""Clean evaluation batches are preprocessed once per run and shared by every axis (polymodal.clean_batches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from polymodal.clean_batches import LIMIT_ENV, CleanBatches, cache_of, limit_bytes
from polymodal.errors import ConfigError
from polymodal.evaluation import clean_batch

from axes_models import experiment


#: Samples evaluated: more than one task batch (32), within one noise/adversarial batch (64).
LIMIT = 40


class Counting:
    """Counts the samples a modality preprocesses, one by one or batched (everything else passes through)."""

    def __init__(self, modality: Any):
        self.inner = modality
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def preprocess(self, raw: Any) -> Any:
        self.calls += 1
        return self.inner.preprocess(raw)

    def preprocess_batch(self, raws: list[Any]) -> Any:
        out = self.inner.preprocess_batch(raws)
        if out is not None:
            self.calls += sum(r is not None for r in raws)
        return out


def _setup() -> tuple[Any, Any, Any, Counting]:
    import polymodal
    from polymodal_plugins.training.trainer import prepare

    config = experiment({"name": "fusion-classifier", "fusion": "concat",
                         "encoders": {"image": {"name": "cnn", "params": {"width": 8, "depth": 1, "output_dim": 16}},
                                      "text": {"name": "gru", "params": {"hidden_dim": 16, "output_dim": 16}}}},
                        samples=128)
    model, mctx, data = prepare(config, polymodal.get_plugins(), "<test>")
    counter = Counting(data.collate.modalities["image"])
    data.collate.modalities["image"] = counter
    return model.eval(), mctx, data, counter


def _rows(model: Any, mctx: Any, data: Any, tmp: Path) -> dict[str, list[tuple[str, Any, float | None]]]:
    import polymodal

    from polymodal.evaluation import AxisContext

    plugins = polymodal.get_plugins()
    axes = {"task": plugins.build("axes", "task"),
            "robustness.noise": plugins.build("axes", "robustness.noise", severities=[1, 3], fields=["text"],
                                              corruptions={"text": ["word_dropout"]}),
            "robustness.adversarial": plugins.build("axes", "robustness.adversarial", attacks=["fgsm"],
                                                    norms=["linf"], epsilons=[0.01], targets=[["image"]])}
    out = {}
    for name, axis in axes.items():
        ctx = AxisContext(run="r", axis=name, conditions={"model": "m"}, device=torch.device("cpu"), plugins=plugins,
                          model_ctx=mctx, out_dir=tmp, limit=LIMIT)
        rows = list(axis.run(model, data, ctx))
        out[name] = [(r.metric, sorted(r.conditions.items()), r.value) for r in rows]
    return out


def test_axes_of_a_run_preprocess_the_clean_split_once_and_give_the_same_rows(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    model, mctx, data, counter = _setup()
    n = min(LIMIT, len(data.splits["test"]))
    assert n > 32  # two task batches, one noise/adversarial batch
    shared = _rows(model, mctx, data, tmp_path)
    # task (batches of 32) and noise + adversarial (batches of 64: one shared set) preprocess the clean
    # images once per batch size; noise's corrupted copies (text) keep the clean batch's images.
    assert counter.calls == 2 * n
    cache = cache_of(data)
    assert cache is not None and cache.hits >= 1

    monkeypatch.setenv(LIMIT_ENV, "0")  # the cache off: what every axis did before
    model2, mctx2, data2, counter2 = _setup()
    model2.load_state_dict(model.state_dict())
    alone = _rows(model2, mctx2, data2, tmp_path / "off")
    assert counter2.calls == 3 * n  # each axis preprocessed the images again
    assert getattr(data2, "clean_batches", None) is None
    assert alone == shared


class Tiny:
    """Four samples; counts reads."""

    def __init__(self) -> None:
        self.reads = 0

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict[str, Any]:
        self.reads += 1
        return {"id": i, "x": float(i)}


class Collate:
    def __init__(self, scale: float = 1.0) -> None:
        self.modalities: dict[str, Any] = {"x": Described(scale)}
        self.targets: list[str] = []

    def __call__(self, samples: list[dict[str, Any]]) -> Any:
        from polymodal.batch import Batch, ModalityBatch

        scale = self.modalities["x"].scale
        data = torch.tensor([[s["x"] * scale] for s in samples])
        return Batch({"x": ModalityBatch(data, torch.ones(len(samples), dtype=torch.bool))}, {}, [s["id"] for s in samples])


class Described:
    def __init__(self, scale: float) -> None:
        self.scale = scale

    def describe(self) -> dict[str, Any]:
        return {"scale": self.scale}


class Data:
    def __init__(self) -> None:
        self.splits = {"test": Tiny()}
        self.collate = Collate()


def test_a_hit_is_a_copy_a_reconfigured_modality_misses_and_shards_key_apart() -> None:
    data = Data()
    _s, first = clean_batch(data, "test", [0, 1])
    first.inputs["x"].data.mul_(100)  # an axis changing its batch in place
    _s, again = clean_batch(data, "test", [0, 1])
    assert again.inputs["x"].data.flatten().tolist() == [0.0, 1.0]
    assert data.splits["test"].reads == 2  # the second ask read nothing
    clean_batch(data, "test", [2, 3])  # another rank's shard (or batch): its own entry
    assert data.splits["test"].reads == 4
    data.collate.modalities["x"].scale = 2.0  # configured differently: never the stale batch
    _s, scaled = clean_batch(data, "test", [0, 1])
    assert scaled.inputs["x"].data.flatten().tolist() == [0.0, 2.0]


def test_memory_limit_keeps_what_fits_and_recomputes_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    one = 2 * 4 + 2  # two float32 values and two mask bytes per batch of two samples
    cache = CleanBatches(max_bytes=one)
    ds, collate = Tiny(), Collate()
    for _ in range(2):
        cache.get(ds, [0, 1], collate)
        cache.get(ds, [2, 3], collate)
    assert cache.used == one and ds.reads == 2 + 2 + 2  # [0, 1] kept; [2, 3] read twice
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(ConfigError, match=LIMIT_ENV):
        limit_bytes()
    monkeypatch.setenv(LIMIT_ENV, "1.5")
    assert limit_bytes() == int(1.5 * 2**20)
