"""What ``polymodal data inspect`` reports: a dataset as the trainer will see it, before anything trains.

:func:`data_configs` turns a suite, an experiment file or a bare dataset
name into experiment configs (one per distinct ``[data]`` table);
:func:`inspect_experiment` builds their splits and modalities exactly as
training does (:func:`~polymodal_plugins.training.data_source.from_experiment`),
then reports fields, label counts per split, the shapes of one decoded
batch and every sample that fails to load or preprocess. Everything it
returns is JSON-able.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError, PolymodalError
from polymodal.experiment import ExperimentConfig, experiment_from_dict

#: A placeholder model for a bare dataset: inspection never builds it, but the config needs one.
_NO_MODEL = {"name": "fusion-classifier"}


def data_configs(target: str, plugins: Any, *, root: str | None = None, params: dict[str, Any] | None = None,
                 overrides: list[str] | tuple[str, ...] = (), splits: list[str] | None = None,
                 ) -> list[tuple[str, ExperimentConfig]]:
    """``(label, config)`` per distinct data table of ``target`` (suite, experiment file or dataset name).

    A bare dataset is read whole, as one split ``all``, unless ``splits``
    names the splits to ask it for (the first is the training split).
    """
    path = Path(target)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        from polymodal.config import apply_overrides, load_toml

        data = apply_overrides(load_toml(path), overrides)
        if "data" in data and "model" in data:
            return [(path.stem, experiment_from_dict(data, str(path)))]
        return _suite_configs(str(path), plugins, overrides)
    if target in plugins.registry("datasets").names():
        table: dict[str, Any] = {"dataset": target, "params": dict(params or {})}
        if splits:
            table.update(train_split=splits[0], val_split=splits[1] if len(splits) > 1 else False,
                         test_split=splits[2] if len(splits) > 2 else False)
        else:
            table.update(split={"all": 1.0}, train_split="all", val_split=False, test_split=False)
        if root is not None:
            table["root"] = root
        return [(target, experiment_from_dict({"data": table, "model": _NO_MODEL}, f"dataset {target!r}"))]
    if target in plugins.registry("suites").names():
        return _suite_configs(target, plugins, overrides)
    from polymodal.errors import did_you_mean

    names = [*plugins.registry("datasets").names(), *plugins.registry("suites").names()]
    raise ConfigError(f"{target!r} is neither a .toml file, a dataset nor a suite{did_you_mean(target, names)}")


def _suite_configs(target: str, plugins: Any, overrides: list[str] | tuple[str, ...]) -> list[tuple[str, ExperimentConfig]]:
    from polymodal.suite import expand_suite, load_suite_dict, resolve_suite_path

    path = resolve_suite_path(target, plugins)
    suite = expand_suite(load_suite_dict(path, overrides), str(path))
    seen: dict[str, tuple[str, ExperimentConfig]] = {}
    for plan in suite.runs:
        exp = experiment_from_dict(plan.experiment, f"{path}: runs.{plan.label}")
        key = json.dumps([plan.experiment.get("data"), sorted(exp.model.encoders)], sort_keys=True, default=str)
        seen.setdefault(key, (plan.label, exp))
    return list(seen.values())


def inspect_experiment(label: str, config: ExperimentConfig, plugins: Any, *, check_limit: int | None = None,
                       progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The report of one data config (see the module docstring)."""
    from polymodal_plugins.training.data_source import from_experiment

    data, fields, targets, modalities = from_experiment(config, plugins, label)
    train = data.splits[config.data.train_split]
    report: dict[str, Any] = {
        "label": label,
        "dataset": config.data.dataset,
        "fields": dict(getattr(train, "fields", {}) or {}),
        "modalities": {f: info.modality for f, info in fields.items()},
        "targets": {t: {"num_classes": i.num_classes, "labels": i.labels} for t, i in targets.items()},
        "splits": {},
        "batch": None,
        "failures": [],
        "notes": list(data.notes),
    }
    train_name = config.data.train_split
    # A split that is the training data again (its reader has no such split) is not checked twice.
    shared = {n for n, ds in data.splits.items() if n != train_name and getattr(ds, "split", "") is None}
    for name, ds in data.splits.items():
        report["splits"][name] = {"samples": len(ds), "labels": _label_counts(ds, targets)}
        if name in shared:
            report["splits"][name]["same_as"] = train_name
    for name, skipped in data.skipped.items():
        report["failures"] += [{"split": name, "id": s["id"], "error": s["reason"], "skipped": True} for s in skipped]
    for name, ds in data.splits.items():
        if name not in shared:
            report["failures"] += list(_failures(name, ds, data.collate, check_limit, progress))
    bad = {f["index"] for f in report["failures"] if f["split"] == train_name and "index" in f}
    good = [i for i in range(len(train)) if i not in bad][:config.data.batch_size]
    size = len(good)
    try:
        from polymodal.streaming import iter_samples

        batch = data.collate(list(iter_samples(train, good)))
        report["batch"] = {
            "size": size,
            "inputs": {f: {"shape": list(b.data.shape), "dtype": str(b.data.dtype).replace("torch.", ""),
                           "mask": list(b.mask.shape)} for f, b in batch.inputs.items()},
            "targets": {t: list(v.shape) if hasattr(v, "shape") else f"list of {len(v)}"
                        for t, v in batch.targets.items()},
        }
    except PolymodalError as exc:
        report["batch"] = {"error": str(exc)}
    return report


def _label_counts(ds: Any, targets: dict[str, Any]) -> dict[str, dict[str, int]]:
    from polymodal.splits import target_values

    out = {}
    for t, info in targets.items():
        if info.num_classes is None:
            continue
        counts = Counter(target_values(ds, t))
        names = info.labels or [str(i) for i in range(info.num_classes)]
        out[t] = {names[k] if isinstance(k, int) and 0 <= k < len(names) else str(k): n
                  for k, n in sorted(counts.items(), key=lambda kv: str(kv[0]))}
    return out


def _failures(split: str, ds: Any, collate: Any, limit: int | None,
              progress: Callable[[str], None] | None) -> Iterator[dict[str, Any]]:
    """Load and preprocess every sample alone; each one that fails, with the reason."""
    from polymodal.streaming import iter_samples

    n = len(ds) if limit is None else min(limit, len(ds))
    samples = iter_samples(ds, range(n))  # one pass over a streamed dataset
    for i in range(n):
        if progress is not None and i % 100 == 0:
            progress(f"checking {split} {i}/{n}")
        try:
            collate([next(samples)])
        except Exception as exc:  # noqa: BLE001 - inspection reports every failure, whatever its type
            error = str(exc) if isinstance(exc, PolymodalError) else f"{type(exc).__name__}: {exc}"
            yield {"split": split, "index": i, "error": error}
            samples = iter_samples(ds, range(i + 1, n))  # a stream that raised is spent: go on after the sample


def format_report(report: dict[str, Any]) -> str:
    """The human-readable form of :func:`inspect_experiment`'s report."""
    lines = [f"{report['label']}: dataset {report['dataset']!r}"]
    lines.append("  fields: " + ", ".join(f"{f} ({k})" for f, k in report["fields"].items()))
    lines.append("  loaded: " + (", ".join(f"{f} -> {m}" for f, m in report["modalities"].items()) or "none"))
    for t, info in report["targets"].items():
        count = info["num_classes"]
        lines.append(f"  target {t}: " + (f"{count} classes" if count is not None else "not a class target"))
    for name, split in report["splits"].items():
        if "same_as" in split:
            lines.append(f"  split {name}: the same {split['samples']} samples as {split['same_as']!r}")
            continue
        lines.append(f"  split {name}: {split['samples']} samples")
        for t, counts in split["labels"].items():
            lines.append(f"    {t}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    batch = report["batch"] or {}
    if "error" in batch:
        lines.append(f"  one batch: FAILED: {batch['error']}")
    elif batch:
        lines.append(f"  one batch of {batch['size']}:")
        for f, b in batch["inputs"].items():
            lines.append(f"    {f}: {b['dtype']} {b['shape']} (mask {b['mask']})")
        for t, shape in batch["targets"].items():
            lines.append(f"    target {t}: {shape}")
    failures = report["failures"]
    lines.append(f"  failing samples: {len(failures)}")
    for f in failures:
        where = f"id {f['id']!r}" if "id" in f else f"index {f['index']}"
        lines.append(f"    [{f['split']}] {where}{' (skipped)' if f.get('skipped') else ''}: {f['error']}")
    lines += [f"  warning: {n}" for n in report["notes"]]
    return "\n".join(lines)
