"""Suite files: runs x axes, with sweeps and includes, validated all at once.

A suite TOML composes evaluation runs::

    name = "fusion-ablation"
    include = ["base.toml"]          # merged first; this file overrides
    seeds = [0, 1]                   # every run once per seed (train.seed)
    eval_split = "test"

    [defaults.data]                  # experiment tables shared by every run
    dataset = "shapes"
    [defaults.train]
    epochs = 2

    [runs.classifier]                # one experiment table per run label
    axes = ["task", "noise"]         # labels of [axes.*] tables (default: all)
    model.name = "fusion-classifier"
    model.fusion = ["concat", "weighted", "attention"]   # a list sweeps
    model.encoders.image.name = "cnn"

    [axes.task]                      # an axis; the label is its name ...
    [axes.noise]                     # ... unless `axis = "<name>"` says otherwise
    axis = "robustness.noise"
    severities = [1, 2, 3]

A list given for ``model.name``, ``model.fusion`` or ``data.dataset``, and any
dotted key in a run's ``sweep`` table (``sweep = { "train.optimizer.lr" =
[1e-3, 3e-3] }``), expands into one run per value (the cross product when
several). Each expanded run is an :class:`~polymodal.experiment.ExperimentConfig`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from polymodal.config import apply_overrides, load_toml
from polymodal.errors import ConfigError, PolymodalError, did_you_mean

_AUTO_SWEEP = ("model.name", "model.fusion", "data.dataset")
_SUITE_KEYS = {"name", "description", "include", "seeds", "eval_split", "defaults", "runs", "axes", "plugins",
               "device", "limit", "trainer"}
_RUN_KEYS = {"axes", "sweep", "data", "model", "train", "name", "description"}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: tables merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


#: Include limits: an include "bomb" (each file including the next twice) grows as 2^depth.
MAX_INCLUDE_DEPTH = 8
MAX_INCLUDED_FILES = 64
#: At most this many problems are listed in one error; the rest are counted.
MAX_PROBLEMS_SHOWN = 20


def load_suite_dict(path: str | Path, overrides: Iterable[str] = (), _seen: tuple[Path, ...] = (),
                    _count: list[int] | None = None) -> dict[str, Any]:
    """Parse a suite file, resolving ``include`` (relative to the including file), within the include limits."""
    p = Path(path).resolve()
    if p in _seen:
        chain = " -> ".join(str(s) for s in (*_seen, p))
        raise ConfigError(f"{path}: include cycle: {chain}")
    if len(_seen) > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{_seen[0]}: includes nested deeper than {MAX_INCLUDE_DEPTH} levels (at {path})")
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_INCLUDED_FILES:
        raise ConfigError(f"{_seen[0] if _seen else path}: more than {MAX_INCLUDED_FILES} included files in all "
                          f"(at {path}); is something included repeatedly?")
    data = load_toml(p)
    includes = data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{path}: include: expected a list of file names")
    merged: dict[str, Any] = {}
    for inc in includes:
        merged = deep_merge(merged, load_suite_dict(p.parent / inc, (), (*_seen, p), count))
    merged = deep_merge(merged, data)
    return apply_overrides(merged, overrides)


def shown_problems(problems: list[str]) -> list[str]:
    """The first :data:`MAX_PROBLEMS_SHOWN` problems (each cut to 300 characters) and a count of the rest."""
    shown = [p if len(p) <= 300 else p[:297] + "..." for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return shown


def _get(table: dict[str, Any], dotted: str) -> Any:
    node: Any = table
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(table: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = table
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


@attrs.frozen
class AxisEntry:
    """One ``[axes.<label>]`` table."""

    label: str
    name: str
    params: dict[str, Any]


@attrs.frozen
class RunPlan:
    """One expanded run of a suite: an experiment table plus the axes to apply."""

    id: str
    label: str
    experiment: dict[str, Any]
    axes: tuple[str, ...]
    swept: dict[str, Any]
    seed: int


@attrs.frozen
class Suite:
    """A resolved suite: expanded runs and axis entries (validated by the runner)."""

    name: str
    source: str
    data: dict[str, Any] = attrs.field(repr=False)
    runs: tuple[RunPlan, ...]
    axes: dict[str, AxisEntry]
    eval_split: str = "test"
    description: str = ""


def _value_label(value: Any) -> str:
    return str(value).replace("/", "_").replace(" ", "")


def expand_suite(data: dict[str, Any], source: str, *, seeds: list[int] | None = None) -> Suite:
    """Expand sweeps and seeds into :class:`RunPlan` objects. Errors name the key."""
    problems: list[str] = []
    unknown = [key for key in data if key not in _SUITE_KEYS]
    if len(unknown) > MAX_PROBLEMS_SHOWN:  # a suggestion each would cost minutes for millions of keys
        problems.append(f"{source}: {len(unknown)} unknown keys, e.g. "
                        f"{', '.join(repr(str(k)[:40]) for k in unknown[:5])}; valid keys: {', '.join(sorted(_SUITE_KEYS))}")
    else:
        problems.extend(f"{source}: {key}: unknown key{did_you_mean(key, _SUITE_KEYS)}" for key in unknown)
    name = data.get("name", Path(source).stem)
    seed_list = seeds if seeds is not None else data.get("seeds", [0])
    if isinstance(seed_list, int) and not isinstance(seed_list, bool):
        seed_list = [seed_list]
    if not isinstance(seed_list, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seed_list):
        problems.append(f"{source}: seeds: expected a list of integers")
        seed_list = [0]
    axes_table = data.get("axes", {})
    axes: dict[str, AxisEntry] = {}
    if not isinstance(axes_table, dict):
        problems.append(f"{source}: axes: expected a table of [axes.<label>] tables")
        axes_table = {}
    for label, table in axes_table.items():
        if not isinstance(table, dict):
            problems.append(f"{source}: axes.{label}: expected a table of axis parameters")
            continue
        params = dict(table)
        axis_name = params.pop("axis", label)
        axes[label] = AxisEntry(label, axis_name, params)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(f"{source}: defaults: expected a table")
        defaults = {}
    runs_table = data.get("runs", {})
    if not isinstance(runs_table, dict) or not runs_table:
        problems.append(f"{source}: runs: a suite needs at least one [runs.<label>] table")
        runs_table = {}
    plans: list[RunPlan] = []
    for label, table in runs_table.items():
        where = f"{source}: runs.{label}"
        if not isinstance(table, dict):
            problems.append(f"{where}: expected a table")
            continue
        for key in table:
            if key not in _RUN_KEYS:
                problems.append(f"{where}.{key}: unknown key{did_you_mean(key, _RUN_KEYS)}")
        run_axes = table.get("axes", list(axes))
        if not isinstance(run_axes, list):
            problems.append(f"{where}.axes: expected a list of axis labels")
            run_axes = []
        for a in run_axes:
            if a not in axes:
                problems.append(f"{where}.axes: no [axes.{a}] table in the suite{did_you_mean(str(a), axes)}")
        exp = deep_merge(defaults, {k: v for k, v in table.items() if k not in ("axes", "sweep", "description")})
        sweep: dict[str, list[Any]] = {}
        for dotted in _AUTO_SWEEP:
            value = _get(exp, dotted)
            if isinstance(value, list):
                sweep[dotted] = value
        explicit = table.get("sweep", {})
        if not isinstance(explicit, dict):
            problems.append(f"{where}.sweep: expected a table of dotted keys -> lists")
            explicit = {}
        for dotted, values in explicit.items():
            if not isinstance(values, list) or not values:
                problems.append(f"{where}.sweep.{dotted}: expected a non-empty list of values")
                continue
            sweep[dotted] = values
        keys = list(sweep)
        for combo in itertools.product(*(sweep[k] for k in keys)):
            for seed in seed_list:
                run_exp = copy.deepcopy(exp)
                swept = {}
                for k, v in zip(keys, combo, strict=True):
                    _set(run_exp, k, v)
                    swept[k.rsplit(".", 1)[-1] if k in _AUTO_SWEEP else k] = v
                _set(run_exp, "train.seed", seed)
                if data.get("limit") is not None:
                    _set(run_exp, "data.limit", data["limit"])
                if data.get("device") is not None:
                    _set(run_exp, "train.device", data["device"])
                parts = [label] + [f"{k}={_value_label(v)}" for k, v in swept.items()] + [f"seed={seed}"]
                run_id = "/".join(parts)
                run_exp["name"] = run_id.replace("/", "-")
                plans.append(RunPlan(run_id, label, run_exp, tuple(run_axes), swept, seed))
    if problems:
        raise ConfigError("invalid suite:\n  " + "\n  ".join(shown_problems(problems)))
    return Suite(name=str(name), source=source, data=data, runs=tuple(plans), axes=axes,
                 eval_split=str(data.get("eval_split", "test")), description=str(data.get("description", "")))


def resolve_suite_path(name_or_path: str, plugins: Any) -> Path:
    """A suite file path from a path or the name of a registered suite."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: no such suite file")
        return p
    spec = plugins.get("suites", name_or_path)
    target = spec.load()
    path = Path(target() if callable(target) else target)
    if not path.is_file():
        raise PolymodalError(f"suite {name_or_path!r} from plugin {spec.plugin!r} points to missing file {path}")
    return path
