'''File templates written by ``polymodal new-plugin``, one set per component kind.

Kept apart from the command so the command module reads as logic. Templates
use :class:`string.Template` placeholders (``${pkg}``, ``${cls}`` ...), which
never clash with Python syntax. Each minimal implementation follows the
contract in ``polymodal.hookspecs`` for its kind, works as written, and is
covered by the generated tests, so a new author starts from green tests.
'''

from __future__ import annotations

PYPROJECT = """\
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "${dist}"
version = "0.1.0"
description = "${description}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["polymodal>=${core_version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# polymodal discovers plugins through this entry point group. The entry point
# name is the plugin's name: `POLYMODAL_DISABLE_PLUGINS=${name}` disables it.
[project.entry-points.polymodal]
"${name}" = "${pkg}:plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

INIT = '''\
"""${dist}: a polymodal ${singular} plugin.

The entry point loads this module, so it stays light: the implementation is
named as a lazy "module:Class" string and imported only when a ${singular} is
built (``polymodal list`` never imports it).
"""

from polymodal import component

#: The polymodal plugin API this package is written against; an older core
#: refuses to load it with a clear message instead of failing later.
POLYMODAL_API = "${api}"

plugin = component(
    "${kind}",
    "${name}",
    "${pkg}.${module}:${cls}",
    description="${description}",${extra_options}
)
plugin.POLYMODAL_API = POLYMODAL_API
'''

README = """\
# ${dist}

${description}

A [polymodal](https://pypi.org/project/polymodal/) plugin registering the
${singular} `${name}`.

## Install

```
pip install -e .
polymodal list ${kind} ${name}
polymodal info ${singular} ${name}
```

## Use

${usage}

## Develop

The implementation is in `src/${pkg}/${module}.py`; the plugin object in
`src/${pkg}/__init__.py`; tests use the `make_plugins` fixture that polymodal
ships as a pytest plugin.

```
pip install -e '.[test]'
python -m pytest -q
```
"""

USAGE = {
    "fusions": 'In a model config: `fusion = "${name}"`.',
    "encoders": 'In a model config: `encoders.<modality> = "${name}"` with `input_dim = ...`.',
    "models": 'In a suite: `model = "${name}"`.',
    "metrics": 'In Python: `polymodal.get_plugins().build("metrics", "${name}")` gives a torchmetrics Metric.',
    "axes": 'In a suite: `[axes.${name}]` with `target = "label"`.',
    "datasets": 'In a suite: `dataset = "${name}"`; the root holds `<split>.jsonl`.',
}

EXTRA_OPTIONS = {
    "models": '\n    capabilities=["classify"],',
}

IMPLEMENTATIONS: dict[str, str] = {}
TESTS: dict[str, str] = {}

IMPLEMENTATIONS["fusions"] = '''\
"""The ${name} fusion strategy.

Starting point: each present modality's pooled features are projected to
``output_dim`` and averaged over the modalities a sample actually has, so a
missing modality (all-false mask row, or absent key) is simply left out.
"""

from __future__ import annotations

import torch
from torch import nn

from polymodal.batch import Features


class ${cls}(nn.Module):
    """Mean of per-modality linear projections over present modalities."""

    def __init__(self, input_dims: dict[str, int], output_dim: int = 64) -> None:
        super().__init__()
        self.modalities = sorted(input_dims)
        self.output_dim = output_dim
        self.project = nn.ModuleDict({m: nn.Linear(input_dims[m], output_dim) for m in self.modalities})
        self._weights: torch.Tensor | None = None

    def forward(self, features: dict[str, Features]) -> torch.Tensor:
        ref = next(iter(features.values())).tokens
        total = ref.new_zeros(ref.shape[0], self.output_dim)
        weights = ref.new_zeros(ref.shape[0], len(self.modalities))
        for i, m in enumerate(self.modalities):
            if m in features:
                present = features[m].present.to(ref.dtype)
                total = total + self.project[m](features[m].pooled()) * present.unsqueeze(1)
                weights[:, i] = present
        count = weights.sum(1, keepdim=True).clamp_min(1.0)  # a sample with nothing fuses to 0
        self._weights = (weights / count).detach()
        return total / count

    def interpretation(self) -> dict[str, torch.Tensor]:
        """``modality_weights`` ``[B, M]``: each modality's share in the last batch (sorted order)."""
        return {} if self._weights is None else {"modality_weights": self._weights}
'''

TESTS["fusions"] = '''\
import torch

import ${pkg}
from polymodal import build_plugin_manager
from polymodal.batch import Features


def feats(present_image):
    mask = torch.ones(3, 4, dtype=torch.bool)
    image_mask = mask.clone()
    image_mask[~torch.tensor(present_image)] = False
    return {"image": Features(torch.randn(3, 4, 5), image_mask), "text": Features(torch.randn(3, 4, 6), mask)}


def test_fuses_to_output_dim(make_plugins):
    fusion = make_plugins(${pkg}.plugin).build("fusions", "${name}", {"image": 5, "text": 6}, output_dim=8)
    out = fusion(feats([True, True, True]))
    assert out.shape == (3, fusion.output_dim) == (3, 8)
    assert torch.allclose(fusion.interpretation()["modality_weights"], torch.full((3, 2), 0.5))


def test_missing_modality_is_left_out(make_plugins):
    fusion = make_plugins(${pkg}.plugin).build("fusions", "${name}", {"image": 5, "text": 6}, output_dim=8)
    f = feats([True, False, True])
    text_only = fusion({"text": f["text"]})
    out = fusion(f)
    torch.testing.assert_close(out[1], text_only[1])
    assert not torch.allclose(out[0], text_only[0])


def test_installed_entry_point_registers_it():
    spec = build_plugin_manager(entry_points=True).get("fusions", "${name}")
    assert spec.distribution == "${dist}"
'''

IMPLEMENTATIONS["encoders"] = '''\
"""The ${name} encoder.

Starting point: a per-position linear projection. Sequence inputs ``[B, T, F]``
with a ``[B, T]`` mask keep their tokens; a vector per sample ``[B, F]`` with a
``[B]`` mask becomes one token.
"""

from __future__ import annotations

from torch import nn

from polymodal import DataError
from polymodal.batch import Features, ModalityBatch


class ${cls}(nn.Module):
    """Linear token projection from ``input_dim`` to ``output_dim`` features."""

    def __init__(self, input_dim: int, output_dim: int = 64) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.project = nn.Linear(input_dim, output_dim)

    def forward(self, batch: ModalityBatch) -> Features:
        data, mask = batch.data.float(), batch.mask
        if data.dim() == 2 and mask.dim() == 1:
            data, mask = data.unsqueeze(1), mask.unsqueeze(1)
        if data.dim() != 3 or data.shape[-1] != self.input_dim or mask.shape != data.shape[:2]:
            raise DataError(
                f"${name} encoder expects data [B, T, {self.input_dim}] with mask [B, T] "
                f"(or [B, {self.input_dim}] with mask [B]); got data {tuple(batch.data.shape)}, "
                f"mask {tuple(batch.mask.shape)}"
            )
        tokens = self.project(data) * mask.unsqueeze(-1).to(data.dtype)
        return Features(tokens, mask.bool())
'''

TESTS["encoders"] = '''\
import pytest
import torch

import ${pkg}
from polymodal import DataError, build_plugin_manager
from polymodal.batch import ModalityBatch


def test_encodes_tokens_with_mask(make_plugins):
    encoder = make_plugins(${pkg}.plugin).build("encoders", "${name}", input_dim=5, output_dim=7)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    feats = encoder(ModalityBatch(torch.randn(2, 3, 5), mask))
    assert feats.tokens.shape == (2, 3, encoder.output_dim) == (2, 3, 7)
    assert torch.equal(feats.mask, mask)
    assert (feats.tokens[1] == 0).all()  # a missing sample encodes to nothing


def test_one_vector_per_sample_is_one_token(make_plugins):
    encoder = make_plugins(${pkg}.plugin).build("encoders", "${name}", input_dim=5)
    feats = encoder(ModalityBatch(torch.randn(4, 5), torch.ones(4, dtype=torch.bool)))
    assert feats.tokens.shape == (4, 1, 64)


def test_wrong_width_is_a_data_error(make_plugins):
    encoder = make_plugins(${pkg}.plugin).build("encoders", "${name}", input_dim=5)
    with pytest.raises(DataError, match="expects data"):
        encoder(ModalityBatch(torch.randn(2, 3, 9), torch.ones(2, 3, dtype=torch.bool)))


def test_installed_entry_point_registers_it():
    spec = build_plugin_manager(entry_points=True).get("encoders", "${name}")
    assert spec.distribution == "${dist}"
'''

IMPLEMENTATIONS["models"] = '''\
"""The ${name} model.

Starting point: a linear classifier over each modality's flattened input,
summed over the modalities a sample has (capability ``classify``).
"""

from __future__ import annotations

import torch
from torch import nn

from polymodal import DataError
from polymodal.batch import Batch


class ${cls}(nn.Module):
    """``forward(batch) -> logits [B, num_classes]``; missing modalities contribute nothing."""

    def __init__(self, input_dims: dict[str, int], num_classes: int = 2) -> None:
        super().__init__()
        self.input_dims = dict(input_dims)
        self.num_classes = num_classes
        self.heads = nn.ModuleDict({m: nn.Linear(d, num_classes, bias=False) for m, d in input_dims.items()})
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, batch: Batch) -> torch.Tensor:
        logits = self.bias.expand(len(batch), -1)
        for m, head in self.heads.items():
            if m not in batch.inputs:
                continue
            mb = batch.inputs[m]
            x = mb.data.float().flatten(1)
            if x.shape[1] != self.input_dims[m]:
                raise DataError(f"${name} model: modality {m!r} has {x.shape[1]} features per sample, "
                                f"expected {self.input_dims[m]} (input_dims)")
            logits = logits + head(x) * mb.present.unsqueeze(1).to(x.dtype)
        return logits
'''

TESTS["models"] = '''\
import torch

import ${pkg}
from polymodal import build_plugin_manager
from polymodal.batch import Batch, ModalityBatch


def batch(n=16, present=None):
    x = torch.randn(n, 3)
    mask = torch.ones(n, dtype=torch.bool) if present is None else present
    return Batch({"image": ModalityBatch(x, mask)}, {"label": (x[:, 0] > 0).long()}, list(range(n)))


def test_learns_a_separable_task(make_plugins):
    torch.manual_seed(0)
    plugins = make_plugins(${pkg}.plugin)
    assert "classify" in plugins.get("models", "${name}").capabilities
    model = plugins.build("models", "${name}", {"image": 3}, num_classes=2)
    data = batch(128)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data), data.targets["label"]).backward()
        opt.step()
    assert (model(data).argmax(1) == data.targets["label"]).float().mean() > 0.9


def test_missing_modality_gives_the_prior(make_plugins):
    model = make_plugins(${pkg}.plugin).build("models", "${name}", {"image": 3})
    out = model(batch(2, present=torch.tensor([True, False])))
    torch.testing.assert_close(out[1], model.bias)


def test_installed_entry_point_registers_it():
    spec = build_plugin_manager(entry_points=True).get("models", "${name}")
    assert spec.distribution == "${dist}"
'''

IMPLEMENTATIONS["metrics"] = '''\
"""The ${name} metric.

Starting point: mean absolute error. torchmetrics owns the states, ``reset``
and the cross-process synchronisation; only ``update`` and ``compute`` are
written here.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from polymodal import DataError


class ${cls}(Metric):
    """Mean absolute error between ``preds`` and ``target`` of equal shape."""

    higher_is_better = False
    is_differentiable = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("abs_error", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.shape != target.shape:
            raise DataError(f"${name}: preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        self.abs_error += (preds.double() - target.double()).abs().sum()
        self.count += target.numel()

    def compute(self) -> torch.Tensor:
        return self.abs_error / self.count.clamp_min(1)
'''

TESTS["metrics"] = '''\
import pytest
import torch

import ${pkg}
from polymodal import DataError, build_plugin_manager


def test_matches_a_direct_computation_across_batches(make_plugins):
    metric = make_plugins(${pkg}.plugin).build("metrics", "${name}")
    preds, target = torch.randn(100), torch.randn(100)
    for i in range(0, 100, 30):
        metric.update(preds[i : i + 30], target[i : i + 30])
    assert metric.compute().item() == pytest.approx((preds - target).abs().mean().item(), rel=1e-6)
    metric.reset()
    metric.update(torch.zeros(3), torch.ones(3))
    assert metric.compute().item() == 1.0


def test_shape_mismatch_is_a_data_error(make_plugins):
    metric = make_plugins(${pkg}.plugin).build("metrics", "${name}")
    with pytest.raises(DataError, match="differ in shape"):
        metric.update(torch.zeros(3), torch.zeros(4))


def test_installed_entry_point_registers_it():
    spec = build_plugin_manager(entry_points=True).get("metrics", "${name}")
    assert spec.distribution == "${dist}"
'''

IMPLEMENTATIONS["axes"] = '''\
"""The ${name} evaluation axis.

Starting point: classification accuracy of a model with capability
``classify`` over the evaluation data, as one result row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import attrs
import torch

from polymodal import DataError
from polymodal.batch import Batch
from polymodal.results import ResultRow


@attrs.define
class ${cls}:
    """``run(model, data, ctx)`` yields the accuracy of ``model(batch).argmax(-1)`` against ``target``."""

    requires: ClassVar[frozenset[str]] = frozenset({"classify"})
    target: str = "label"

    def run(self, model: Any, data: Iterable[Batch], ctx: Any) -> Iterator[ResultRow]:
        correct = total = 0
        with torch.no_grad():
            for batch in data:
                if self.target not in batch.targets:
                    raise DataError(f"${name} axis: batch has no target {self.target!r}; "
                                    f"targets are {sorted(batch.targets)}")
                labels = batch.targets[self.target]
                correct += int((model(batch).argmax(-1) == labels).sum())
                total += len(labels)
        yield ResultRow(axis="${name}", metric="accuracy", value=correct / total if total else None,
                        run=str(getattr(ctx, "run", "") or ""), conditions={"target": self.target},
                        extra={"samples": total})
'''

TESTS["axes"] = '''\
import pytest
import torch

import ${pkg}
from polymodal import DataError, build_plugin_manager
from polymodal.batch import Batch, ModalityBatch


class Oracle(torch.nn.Module):
    """Predicts class 1 exactly where the first feature is positive."""

    def forward(self, batch):
        x = batch.inputs["image"].data[:, 0]
        return torch.stack([-x, x], dim=1)


def batches(flip=0):
    torch.manual_seed(0)
    for _ in range(3):
        x = torch.randn(10, 2)
        label = (x[:, 0] > 0).long()
        label[:flip] = 1 - label[:flip]
        yield Batch({"image": ModalityBatch(x, torch.ones(10, dtype=torch.bool))}, {"label": label})


def test_reports_accuracy(make_plugins):
    axis = make_plugins(${pkg}.plugin).build("axes", "${name}")
    assert axis.requires == {"classify"}
    (row,) = list(axis.run(Oracle(), batches(), None))
    assert (row.axis, row.metric, row.value, row.extra["samples"]) == ("${name}", "accuracy", 1.0, 30)
    (row,) = list(axis.run(Oracle(), batches(flip=2), None))
    assert row.value == pytest.approx(24 / 30)


def test_missing_target_is_a_data_error(make_plugins):
    axis = make_plugins(${pkg}.plugin).build("axes", "${name}", target="colour")
    with pytest.raises(DataError, match="no target 'colour'"):
        list(axis.run(Oracle(), batches(), None))


def test_installed_entry_point_registers_it():
    spec = build_plugin_manager(entry_points=True).get("axes", "${name}")
    assert spec.distribution == "${dist}"
'''

IMPLEMENTATIONS["datasets"] = '''\
"""The ${name} dataset.

Starting point: a JSON-lines manifest ``<root>/<split>.jsonl``, one object per
sample mapping modality names (and label keys) to raw values; file values are
read later by the modality, relative to ``root``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from polymodal import DataError

_SPLIT = re.compile(r"^[A-Za-z0-9_-]+$$")


class ${cls}:
    """Map-style dataset of ``dict[modality or label, raw value]`` items."""

    def __init__(self, root: str | Path, split: str = "train") -> None:
        if not _SPLIT.match(split):
            raise DataError(f"${name} dataset: split {split!r} must be letters, digits, '_' or '-'")
        self.root = Path(root)
        self.path = self.root / f"{split}.jsonl"
        if not self.path.is_file():
            raise DataError(f"${name} dataset: no manifest {self.path}")
        self.items: list[dict[str, Any]] = []
        with self.path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{self.path}:{lineno}: not valid JSON: {exc.msg}") from None
                if not isinstance(item, dict) or not item:
                    raise DataError(f"{self.path}:{lineno}: expected a non-empty JSON object")
                self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(self.items[index])
'''

TESTS["datasets"] = '''\
import pytest

import ${pkg}
from polymodal import DataError, build_plugin_manager


def test_reads_the_split_manifest(make_plugins, tmp_path):
    (tmp_path / "test.jsonl").write_text('{"text": "a red circle", "label": 0}\\n\\n{"text": "a blue square", "label": 1}\\n')
    data = make_plugins(${pkg}.plugin).build("datasets", "${name}", root=tmp_path, split="test")
    assert len(data) == 2
    assert data[1] == {"text": "a blue square", "label": 1}


def test_bad_line_names_file_and_line(make_plugins, tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "ok"}\\n[1, 2]\\n')
    with pytest.raises(DataError, match="train.jsonl:2"):
        make_plugins(${pkg}.plugin).build("datasets", "${name}", root=tmp_path)


def test_split_cannot_escape_root(make_plugins, tmp_path):
    with pytest.raises(DataError, match="split"):
        make_plugins(${pkg}.plugin).build("datasets", "${name}", root=tmp_path, split="../secret")


def test_installed_entry_point_registers_it():
    spec = build_plugin_manager(entry_points=True).get("datasets", "${name}")
    assert spec.distribution == "${dist}"
'''
