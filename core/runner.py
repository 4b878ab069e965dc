"""The runner: a suite in, a results folder out, resumable at any moment.

Layout of the results folder::

    manifest.json      resolved suite, versions of everything, seeds, device, run statuses
    results.jsonl      one ResultRow per line, appended and fsynced as produced
    artifacts.jsonl    examples, heatmaps, generated images for the reporters
    artifacts/         their PNG files
    progress.jsonl     commit records: one per unit of work of an axis, one per finished (run, axis)
    runs/<run>/train/  the trainer's checkpoint and per-epoch metrics

Killing the process at any moment loses nothing already committed. A unit of
work (see :mod:`polymodal.evaluation`) is written as its rows (one append to
results.jsonl), its artifact records (one append to artifacts.jsonl), then a
commit record in progress.jsonl holding the sizes both files had after them.
``--resume`` cuts both files back to the sizes in the last commit record --
the rows and artifacts of a unit that was killed half-way -- skips committed
units and finished axes, continues training from its checkpoint, and drops
any row it already has, so a resumed run ends with exactly the bytes of an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from polymodal import __version__
from polymodal.errors import ConfigError, PluginError, PolymodalError
from polymodal.evaluation import AxisContext, Unit, condition_key
from polymodal.progress import SuiteProgress as Progress
from polymodal.results import JsonlStore, ResultRow, atomic_write_bytes, is_storage_failure, storage_error
from polymodal.suite import RunPlan, Suite, shown_problems
from polymodal.versions import versions
from polymodal.writer_lock import writer_lock

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
ARTIFACTS = "artifacts.jsonl"
PROGRESS = "progress.jsonl"
#: Free space below which a run refuses to start, rather than dying half-way.
MIN_FREE_BYTES = 50 * 1024 * 1024


@attrs.define
class TrainedRun:
    """What a trainer hands the runner: a model ready to evaluate, and its data."""

    model: Any
    model_ctx: Any
    data: Any
    figures: dict[str, dict[str, float]] = attrs.field(factory=dict)


@attrs.frozen
class RunOptions:
    """Command-line choices that are not part of the suite."""

    out: Path
    resume: bool = False
    device: str | None = None
    limit: int | None = None
    fail_fast: bool = False
    progress: bool = True
    rank: int = 0
    world_size: int = 1


def _atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode("utf-8"))


class Runner:
    """Validates a suite, then trains and evaluates every run into ``options.out``."""

    def __init__(self, suite: Suite, plugins: Any, options: RunOptions):
        self.suite = suite
        self.plugins = plugins
        self.options = options
        self.out = options.out
        self.is_writer = options.rank == 0
        self.results = JsonlStore(self.out / RESULTS)
        self.artifacts = JsonlStore(self.out / ARTIFACTS)
        self.progress_store = JsonlStore(self.out / PROGRESS)
        self.axes: dict[str, Any] = {}
        self.experiments: dict[str, Any] = {}

    # -- validation -------------------------------------------------------------
    def validate(self) -> None:
        """Check every name, capability and parameter; report all problems at once."""
        from polymodal.evaluation import check_metric_choice, metric_feeds
        from polymodal.experiment import experiment_from_dict, model_params

        problems: list[str] = []
        src = self.suite.source

        def attempt(where: str, fn: Callable[[], Any]) -> Any:
            try:
                return fn()
            except PolymodalError as exc:
                problems.append(f"{where}: {exc}" if not str(exc).startswith(src) else str(exc))
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: {exc}")
            return None

        for label, entry in self.suite.axes.items():
            spec = attempt(f"{src}: axes.{label}", lambda e=entry: self.plugins.get("axes", e.name))
            feeds = None
            if spec is not None and "metrics" in entry.params:
                factory = attempt(f"{src}: axes.{label}", spec.load)
                spec, feeds = (spec, metric_feeds(factory)) if factory is not None else (None, None)
            if feeds is not None:
                # Which figures a suite may choose is the axis's declared fact (``metric_feeds``), checked
                # before its parameters: an axis with fixed figures gets one line naming it and the key.
                if attempt(f"{src}: axes.{label}", lambda e=entry, f=feeds: check_metric_choice(
                        self.plugins, e.name, e.params["metrics"], f) or True) is None:
                    spec = None
            if spec is not None:
                axis = attempt(f"{src}: axes.{label}: parameters of axis {entry.name!r}",
                               lambda s=spec, e=entry: s.build(**e.params))
                if axis is not None and callable(getattr(axis, "validate", None)):
                    # An axis may check its parameters against the registries (metric names) before training.
                    if attempt(f"{src}: axes.{label}", lambda a=axis: a.validate(self.plugins) or True) is None:
                        axis = None
                if axis is not None:
                    self.axes[label] = axis
        seen_models: dict[str, Any] = {}
        for plan in self.suite.runs:
            where = f"{src}: runs.{plan.label} [{plan.id}]"
            exp = attempt(where, lambda p=plan: experiment_from_dict(p.experiment, f"{src}: runs.{p.label} [{p.id}]"))
            if exp is None:
                continue
            self.experiments[plan.id] = exp
            model_spec = attempt(f"{where}: model.name", lambda e=exp: self.plugins.get("models", e.model.name))
            strategy_spec = attempt(f"{where}: train.strategy", lambda e=exp: self.plugins.get("strategies", e.train.strategy))
            if strategy_spec is not None:
                attempt(where, lambda s=strategy_spec, e=exp: s.validate_params(
                    e.train.strategy_params, where, "train.strategy_params"))
            attempt(f"{where}: data.dataset", lambda e=exp: self.plugins.get("datasets", e.data.dataset))
            # A model declares that it fuses fields with ``model.fusion`` by the spec tag ``fusion``.
            if model_spec is not None and "fusion" in model_spec.tags:
                attempt(f"{where}: model.fusion", lambda e=exp: self.plugins.get("fusions", e.model.fusion))
            if model_spec is not None:
                attempt(where, lambda s=model_spec, e=exp: model_params(s, e.model, where))
            for field, enc in exp.model.encoders.items():
                spec = attempt(f"{where}: model.encoders.{field}.name", lambda n=enc.name: self.plugins.get("encoders", n))
                if spec is not None:
                    attempt(where, lambda s=spec, e=enc, f=field: s.validate_params(
                        e.params, where, f"model.encoders.{f}.params"))
            if exp.model.fusion_params:
                fusion_spec = attempt(f"{where}: model.fusion", lambda e=exp: self.plugins.get("fusions", e.model.fusion))
                if fusion_spec is not None:
                    attempt(where, lambda s=fusion_spec, e=exp: s.validate_params(
                        e.model.fusion_params, where, "model.fusion_params"))
            if model_spec is None:
                continue
            seen_models[plan.id] = model_spec
            caps = set(model_spec.capabilities)
            for label in plan.axes:
                axis = self.axes.get(label)
                if axis is None:
                    continue
                need = set(getattr(axis, "requires", frozenset()))
                any_of = set(getattr(axis, "requires_any", frozenset()))
                if not need <= caps:
                    problems.append(f"{where}: axis {label!r} needs model capabilities {sorted(need)}, but model "
                                    f"{exp.model.name!r} has {sorted(caps) or 'none'}; remove it from this run's axes")
                elif any_of and not any_of & caps:
                    problems.append(f"{where}: axis {label!r} needs one of the capabilities {sorted(any_of)}, but "
                                    f"model {exp.model.name!r} has {sorted(caps) or 'none'}")
        trainer = self.suite.data.get("trainer", "default")
        attempt(f"{src}: trainer", lambda: self.plugins.get("trainers", trainer))
        if problems:
            raise ConfigError(f"suite {self.suite.name!r} has {len(problems)} problem(s):\n  "
                              + "\n  ".join(shown_problems(problems)))

    # -- the results folder -------------------------------------------------------
    def _prepare_out(self) -> dict[str, Any]:
        """Rank 0 checks and prepares the folder; every rank learns its verdict.

        Under ``torchrun`` the other ranks wait for it (so none sees a manifest
        rank 0 has only just written, or reads stores rank 0 is repairing) and
        raise the same error when it fails, instead of hanging in a collective.
        """
        if self.options.world_size <= 1:
            return self._prepare_out_here()
        from polymodal.collective import broadcast_object

        error: str | None = None
        manifest: dict[str, Any] = {}
        if self.is_writer:
            try:
                manifest = self._prepare_out_here()
            except PolymodalError as exc:
                error = str(exc)
        error, manifest = broadcast_object((error, manifest))  # every rank tracks run statuses
        if error is not None:
            raise PolymodalError(error)
        return manifest

    def _prepare_out_here(self) -> dict[str, Any]:
        out = self.out
        manifest_path = out / MANIFEST
        if out.exists() and not out.is_dir():
            raise PolymodalError(f"--out {out}: exists and is not a folder")
        if manifest_path.exists() and not self.options.resume:
            raise PolymodalError(f"--out {out}: already holds results; pass --resume to continue, or use another --out")
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise PolymodalError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
        free = shutil.disk_usage(out).free
        if free < MIN_FREE_BYTES:
            raise PolymodalError(f"--out {out}: only {free // (1024 * 1024)} MiB free; need at least "
                                 f"{MIN_FREE_BYTES // (1024 * 1024)} MiB to run safely")
        suite_json = json.loads(json.dumps(self.suite.data, default=str))
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("suite") != suite_json:
                raise PolymodalError(f"--resume: {out} was produced by a different suite (or different --set/--seed "
                                     "options); resume with the same ones or choose another --out")
            for store in (self.results, self.artifacts, self.progress_store):
                store.repair()
            self._drop_uncommitted()
            manifest["resumed"] = manifest.get("resumed", 0) + 1
        else:
            manifest = {
                "schema": 1,
                "polymodal_version": __version__,
                "suite": suite_json,
                "suite_name": self.suite.name,
                "suite_source": self.suite.source,
                "started": datetime.now(timezone.utc).isoformat(),
                "runs": [{"id": p.id, "label": p.label, "model": p.experiment.get("model", {}).get("name"),
                          "fusion": p.experiment.get("model", {}).get("fusion"),
                          "dataset": p.experiment.get("data", {}).get("dataset"), "seed": p.seed,
                          "axes": list(p.axes), "swept": p.swept, "status": "pending"} for p in self.suite.runs],
                "seeds": sorted({p.seed for p in self.suite.runs}),
            }
        manifest["versions"] = versions(self.plugins)
        manifest["device"] = self.options.device or "auto"
        manifest["limit"] = self.options.limit
        manifest["world_size"] = self.options.world_size
        _atomic_write_json(manifest_path, manifest)
        return manifest

    def _drop_uncommitted(self) -> None:
        """Cut results and artifacts back to what the last commit record covers (a torn unit's tail)."""
        last = None
        for record in self.progress_store.read():
            if "results_bytes" in record:
                last = record
        if last is None:  # nothing committed yet, or a folder from before commit records
            if not any(True for _ in self.progress_store.read()):
                self.results.truncate_to(0)
                self.artifacts.truncate_to(0)
            return
        for store, key in ((self.results, "results_bytes"), (self.artifacts, "artifacts_bytes")):
            size = store.size()
            if size < last[key]:
                raise PolymodalError(f"--resume: {store.path} has {size} bytes but its last commit record in "
                                     f"{self.progress_store.path} covers {last[key]}; the folder was changed by "
                                     "something else; use another --out")
            store.truncate_to(last[key])

    def _set_status(self, manifest: dict[str, Any], run_id: str, status: str, **extra: Any) -> None:
        for r in manifest.setdefault("runs", []):
            if r["id"] == run_id:
                r["status"] = status
                r.update(extra)
        if self.is_writer:
            _atomic_write_json(self.out / MANIFEST, manifest)

    # -- running -------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.validate()
        # One writer per results folder (rank 0 writes for all ranks): a second `run` is refused, naming the holder.
        lock = writer_lock(self.out, "polymodal run") if self.is_writer else contextlib.nullcontext()
        with lock:
            try:
                return self._run_locked()
            except OSError as exc:  # a manifest write outside a store
                if is_storage_failure(exc):
                    raise storage_error(self.out, exc) from exc
                raise

    def _run_locked(self) -> dict[str, Any]:
        manifest = self._prepare_out()
        records = list(self.progress_store.read()) if self.options.resume else []
        complete = {(r["run"], r["axis"]) for r in records if r.get("status", "complete") == "complete"}
        units: dict[tuple[str, str], set[str]] = {}
        for r in records:
            if r.get("status") == "committed":
                units.setdefault((r["run"], r["axis"]), set()).add(r["unit"])
        stored_keys: dict[tuple[str, str], set[str]] = {}
        stored_rows: dict[tuple[str, str], list[ResultRow]] = {}
        if self.options.resume:
            for row in self.results.read():
                stored_keys.setdefault((row["run"], row["axis"]), set()).add(
                    condition_key(row["axis"], row["metric"], row.get("conditions", {})))
                stored_rows.setdefault((row["run"], row["axis"]), []).append(ResultRow.from_json(row))
        self._units, self._stored_rows = units, stored_rows
        #: run id -> wall seconds of its training step and of each axis (this rank's), for the manifest.
        self._seconds: dict[str, dict[str, float]] = {}
        bar = Progress(sum(len(p.axes) + 1 for p in self.suite.runs), enabled=self.options.progress and self.is_writer)
        failures = 0
        from polymodal import collective

        guarded = collective.guarded_metrics() if self.options.world_size > 1 else contextlib.nullcontext()
        with guarded:
            # A run is skipped only once the manifest says so: a kill after its last commit record but before
            # the manifest write left every axis complete and the run "pending" (found by the crash sweep).
            recorded = {r.get("id"): r.get("status") for r in manifest.get("runs", [])}
            for index, plan in enumerate(self.suite.runs):
                if recorded.get(plan.id) == "complete" and all((plan.id, a) in complete
                                                               for a in ("train", *plan.axes)):
                    bar.done += len(plan.axes) + 1
                    continue
                if collective.broken():
                    failures += 1
                    self._fail(manifest, plan, f"not run: {collective.broken()}", "", bar)
                    continue
                bar.unit(f"run {index + 1}/{len(self.suite.runs)} {plan.id}")
                error, tb, data = None, "", None
                collective.set_position(plan.id)
                try:
                    data = self._run_one(plan, complete, stored_keys, bar)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # noqa: BLE001 - one failing run must not stop the suite
                    if is_storage_failure(exc):
                        raise storage_error(self.out, exc) from exc  # type: ignore[arg-type]
                    error, tb = f"{type(exc).__name__}: {exc}", traceback.format_exc()
                    if not self.is_writer:  # rank 0 stores its own traceback; the others' would be lost
                        sys.stderr.write(f"rank {self.options.rank}: run {plan.id} failed:\n{tb}")
                errors = self._agree(plan, error)
                if not errors:
                    self._set_status(manifest, plan.id, "complete", **_data_facts(data),
                                     seconds=self._seconds.pop(plan.id, {}))
                    continue
                failures += 1
                message = errors[0] if len(errors) == 1 else "; ".join(errors)
                self._fail(manifest, plan, message, tb, bar)
                if self.options.fail_fast:
                    raise PolymodalError(f"run {plan.id} failed (--fail-fast): {message}")
        manifest["failed_runs"] = failures  # every rank's exit status reads it
        if self.is_writer:
            manifest["finished"] = datetime.now(timezone.utc).isoformat()
            _atomic_write_json(self.out / MANIFEST, manifest)
        bar.note(f"polymodal run: {len(self.suite.runs)} runs, {failures} failed; results in {self.out}")
        return manifest

    def _agree(self, plan: RunPlan, error: str | None) -> list[str]:
        """Every rank's error for this run (one rank failing fails the run on all), as messages."""
        if self.options.world_size <= 1:
            return [error] if error else []
        from polymodal import collective

        try:
            errors = collective.agree(f"end of run {plan.id}", error)
        except PolymodalError as exc:
            return [m for m in (error, str(exc)) if m]
        failed = [(r, e) for r, e in enumerate(errors) if e]
        # The same message from every rank (a mismatch everybody saw) is said once.
        if len({e for _r, e in failed}) == 1:
            return [failed[0][1]]
        return [f"rank {r}: {e}" for r, e in failed]

    def _fail(self, manifest: dict[str, Any], plan: RunPlan, message: str, tb: str, bar: Progress) -> None:
        if self.is_writer:
            error = ResultRow("runner", "error", None, run=plan.id,
                              conditions={"model": plan.experiment.get("model", {}).get("name")},
                              extra={"error": message, "traceback": tb})
            self._commit(plan.id, "runner", Unit(None, "error", rows=[error]), set(), status="error")
        self._set_status(manifest, plan.id, "failed", error=message)
        # Printed even under --quiet: why a run failed must not live only in the files.
        bar.note(f"run {plan.id} failed: {message}", always=True)

    def _train(self, plan: RunPlan, exp: Any) -> TrainedRun:
        trainer_name = self.suite.data.get("trainer", "default")
        factory = self.plugins.get("trainers", trainer_name).load()
        folder = self.out / "runs" / plan.id.replace("/", "__") / "train"
        trained = factory(exp, self.plugins, folder, resume=True, progress=self.options.progress and self.is_writer,
                          device=self.options.device, limit=self.options.limit)
        # A trainer is a plugin: say which contract it broke here, not with an AttributeError later.
        if not isinstance(trained, TrainedRun):
            raise PluginError(f"trainer {trainer_name!r} returned {type(trained).__name__}; expected a "
                              "polymodal.runner.TrainedRun(model, model_ctx, data, figures)")
        if not (isinstance(trained.figures, dict) and all(
                isinstance(f, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in f.values()) for f in trained.figures.values())):
            raise PluginError(f"trainer {trainer_name!r}: figures must map split -> {{metric: number}}, got "
                              f"{trained.figures!r:.200}")
        return trained

    def _run_one(self, plan: RunPlan, complete: set[tuple[str, str]],
                 stored: dict[tuple[str, str], set[str]], bar: Progress) -> Any:
        """Train and evaluate one run; returns its data (for the facts the manifest records)."""
        import torch

        from polymodal import collective

        exp = self.experiments[plan.id]
        t0 = time.perf_counter()
        bar.line("training")
        trained = self._train(plan, exp)
        base = {"model": exp.model.name, "fusion": exp.model.fusion if _uses_fusion(trained.model) else None,
                "dataset": exp.data.dataset, "seed": plan.seed, **{k: v for k, v in plan.swept.items()
                                                                    if k not in ("name", "fusion", "dataset")}}
        base = {k: v for k, v in base.items() if v is not None}
        if (plan.id, "train") not in complete:
            keys = stored.setdefault((plan.id, "train"), set())
            rows = [ResultRow("train", metric, float(value), run=plan.id, conditions={**base, "split": split})
                    for split, figures in sorted(trained.figures.items()) for metric, value in sorted(figures.items())]
            self._commit(plan.id, "train", Unit(None, "train", rows=rows), keys, status="complete")
        bar.finish_unit(time.perf_counter() - t0)
        seconds = self._seconds.setdefault(plan.id, {})
        seconds["train"] = round(time.perf_counter() - t0, 3)
        model = trained.model
        model.eval()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        for label in plan.axes:
            if (plan.id, label) in complete:
                bar.finish_unit(0, skipped=True)
                continue
            t1 = time.perf_counter()
            entry = self.suite.axes[label]
            axis = self.axes[label]
            keys = stored.setdefault((plan.id, entry.name), set())
            prefix = f"run {plan.id} | axis {label}"
            bar.unit(prefix)
            conditions = dict(base)
            if sum(e.name == entry.name for e in self.suite.axes.values()) > 1:
                # Two [axes.*] tables of one axis (say zero-shot with two template
                # sets) would otherwise write rows with identical keys, and the
                # store would keep only the first table's figures.
                conditions["axis_label"] = label
            collective.set_position(plan.id, label)
            ctx = AxisContext(
                run=plan.id, axis=entry.name, conditions=conditions, device=device, plugins=self.plugins,
                model_ctx=trained.model_ctx, out_dir=self.out, seed=plan.seed, limit=self.options.limit,
                split=self.suite.eval_split, rank=self.options.rank, world_size=self.options.world_size,
                done=frozenset(keys),
                progress=lambda done, total, what: bar.line(f"{what} {done}/{total if total else '?'}"),
                committed_units=set(self._units.get((plan.id, label), set())),
                committed_rows=list(self._stored_rows.get((plan.id, entry.name), [])),
                commit=lambda unit, run_id=plan.id, label=label, keys=keys: self._commit(run_id, label, unit, keys),
                data_scope=data_scope(plan.experiment.get("data")),
            )
            torch.manual_seed(plan.seed)
            with torch.no_grad() if getattr(axis, "no_grad", False) else contextlib.nullcontext():
                for row in axis.run(model, trained.data, ctx):
                    if not isinstance(row, ResultRow):
                        raise PolymodalError(f"axis {entry.name!r} yielded {type(row).__name__}, expected a ResultRow")
                    ctx.accept(row)
            # The implicit unit (rows and artifacts outside any unit) commits with the axis's "complete" record.
            ctx.commit = lambda unit, run_id=plan.id, label=label, keys=keys: self._commit(
                run_id, label, unit, keys, status="complete")
            ctx.finish()
            seconds[label] = round(time.perf_counter() - t1, 3)
            bar.finish_unit(time.perf_counter() - t1)
        return trained.data

    def _commit(self, run_id: str, axis: str, unit: Unit, keys: set[str], status: str = "committed") -> None:
        """Store a unit: its new rows (one append), its artifacts (one append), then its commit record.

        The record holds the sizes of both files after the unit, so ``--resume``
        can cut off what a kill left of a unit that never got its record.
        """
        rows = []
        for row in unit.rows:
            key = condition_key(row.axis, row.metric, row.conditions)
            if key not in keys:
                keys.add(key)
                rows.append(row.to_json())
        if not self.is_writer:
            return
        results_bytes = self.results.append_many(rows) if rows else self.results.size()
        artifacts_bytes = self.artifacts.append_many(unit.artifacts) if unit.artifacts else self.artifacts.size()
        record: dict[str, Any] = {"run": run_id, "axis": axis, "status": status, "results_bytes": results_bytes,
                                  "artifacts_bytes": artifacts_bytes}
        if unit.key is not None:
            record["unit"] = unit.key
        self.progress_store.append(record)


def _data_facts(data: Any) -> dict[str, Any]:
    """What the run's data says about itself (``notes``, ``skipped`` samples) for the manifest and reports."""
    facts: dict[str, Any] = {}
    notes = list(getattr(data, "notes", []) or [])
    skipped = dict(getattr(data, "skipped", {}) or {})
    if notes:
        facts["data_notes"] = notes
    if skipped:
        facts["skipped_samples"] = skipped
        facts["skipped"] = sum(len(v) for v in skipped.values())
    return facts


def _uses_fusion(model: Any) -> bool:
    return getattr(model, "fusion", None) is not None


def default_out(suite: Suite) -> Path:
    return Path("results") / suite.name


def run_suite(path_or_name: str, *, plugins: Any, overrides: list[str] | tuple[str, ...] = (),
              seeds: list[int] | None = None, options: RunOptions | None = None) -> tuple[Suite, dict[str, Any]]:
    """Load, validate and run a suite; returns it with its final manifest."""
    from polymodal.suite import expand_suite, load_suite_dict, resolve_suite_path

    path = resolve_suite_path(path_or_name, plugins)
    data = load_suite_dict(path, overrides)
    if seeds is not None:
        data["seeds"] = seeds
    if options is not None and options.limit is not None:
        data["limit"] = options.limit
    if options is not None and options.device:
        data["device"] = options.device
    suite = expand_suite(data, str(path))
    options = options or RunOptions(out=default_out(suite))
    runner = Runner(suite, plugins, options)
    return suite, runner.run()


__all__ = ["RunOptions", "Runner", "TrainedRun", "run_suite"]


#: ``[data]`` keys that change which samples a run evaluates (not how they are batched or preprocessed).
_SAMPLE_KEYS = ("dataset", "params", "root", "train_split", "val_split", "test_split", "split", "limit")


def data_scope(data: Any) -> str | None:
    """A short digest of what a run evaluates (see ``AxisContext.data_scope``); None without a data table."""
    if not isinstance(data, dict):
        return None
    import hashlib

    chosen = {k: data[k] for k in _SAMPLE_KEYS if k in data}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=repr).encode()).hexdigest()[:12]
