"""The training loop behind ``polymodal train``.

One loop serves every strategy: a strategy only decides the loss of a batch
and what is trainable in an epoch (:mod:`.joint`, :mod:`.staged`,
:mod:`.adversarial`). The loop owns the rest: seeded order, learning-rate
schedule, gradient clipping, mixed precision where the device supports it,
progress on stderr, per-epoch metrics streamed to ``metrics.jsonl``, and
resumable checkpoints (``checkpoint/``) from which ``--resume`` continues to
exactly the weights an uninterrupted run reaches.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from polymodal.checkpoint import load_module_weights, load_train_state, save_checkpoint, verify_checkpoint
from polymodal.errors import ConfigError, PolymodalError
from polymodal.evaluation import condition_key
from polymodal.experiment import ExperimentConfig, to_dict
from polymodal.model_api import ModelContext, PolymodalModel, build_model
from polymodal.results import JsonlStore, ResultRow, is_storage_failure, storage_error
from polymodal.strategy import StrategyContext
from polymodal.writer_lock import writer_lock
from polymodal_plugins.training.data_source import TrainingData
from polymodal_plugins.training.evaluation import evaluate
from polymodal.progress import Progress
from polymodal_plugins.training.schedule import build_optimizer, lr_factor, set_lr

CHECKPOINT_DIR = "checkpoint"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


@attrs.define
class TrainOutcome:
    """What a finished (or stopped) training run produced."""

    out_dir: Path
    checkpoint: Path
    steps: int
    epochs: int
    seconds: float
    samples_per_second: float
    metrics: dict[str, dict[str, float]] = attrs.field(factory=dict)
    #: Seconds inside the training loops only (data loading + steps), no evaluation or checkpoints.
    step_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "checkpoint": str(self.checkpoint), "steps": self.steps,
                "epochs": self.epochs, "seconds": self.seconds, "step_seconds": self.step_seconds,
                "samples_per_second": self.samples_per_second,
                "metrics": self.metrics}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"train.device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available")
    return device


def autocast_for(amp: str, device: torch.device) -> tuple[Callable[[], Any] | None, bool]:
    """An autocast context factory (or None) and whether a GradScaler is needed.

    ``auto`` enables bf16 autocast on CUDA devices that support it and leaves
    CPUs in fp32 (CPU autocast slows small models down).
    """
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, False
    if amp in ("auto", "bf16"):
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            if amp == "auto":
                return (lambda: torch.autocast("cuda", dtype=torch.float16)), True
            raise ConfigError("train.amp: bf16 is not supported on this GPU; use fp16 or off")
        return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)), False
    if device.type != "cuda":
        raise ConfigError("train.amp: fp16 needs a CUDA device; use bf16 or off on CPU")
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), True


def make_strategy(config: ExperimentConfig, model: PolymodalModel, ctx: ModelContext,
                  plugins: Any | None = None, modalities: dict[str, Any] | None = None) -> Any:
    """The registered strategy ``[train] strategy``, built with its validated ``strategy_params``."""
    plugins = plugins if plugins is not None else ctx.plugins
    spec = plugins.get("strategies", config.train.strategy)
    params = spec.validate_params(config.train.strategy_params, config.name, "train.strategy_params")
    sctx = StrategyContext(model=model, seed=config.train.seed, fields=dict(ctx.fields), plugins=plugins,
                           config=config, modalities=dict(modalities or {}))
    return spec.build(params, sctx)


class Trainer:
    """Train ``model`` on ``data`` as ``config.train`` says, writing into ``out``."""

    #: Whether this process writes the summary (False on non-zero ranks under torchrun, see :mod:`.ddp`).
    is_writer: bool = True

    def __init__(self, config: ExperimentConfig, model: PolymodalModel, ctx: ModelContext, data: TrainingData,
                 out: str | Path, *, plugins: Any | None = None, progress: bool = True,
                 on_step: Callable[[int], None] | None = None, modalities: dict[str, Any] | None = None):
        self.config = config
        self.tc = config.train
        self.model = model
        self.ctx = ctx
        self.data = data
        self.out = Path(out)
        self.plugins = plugins
        self.progress = progress
        self.on_step = on_step
        self.modalities = dict(modalities or {})
        self.device = resolve_device(self.tc.device)
        self.autocast, needs_scaler = autocast_for(self.tc.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if needs_scaler else None
        self.model.to(self.device)
        self.strategy = make_strategy(config, model, ctx, plugins, self.modalities)
        self.optimizer = build_optimizer(model.stage_groups(), self.tc.optimizer)
        self.steps_per_epoch = data.steps_per_epoch()
        planned = self.steps_per_epoch * self.tc.epochs
        self.total_steps = min(planned, self.tc.max_steps) if self.tc.max_steps else planned
        self.store = JsonlStore(self.out / METRICS_FILE)
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        # The running sums of the epoch in progress: saved with mid-epoch checkpoints, so an epoch resumed
        # after a kill reports the average over all its steps, not only those after the resume.
        self._epoch_sums: dict[str, float] = {}
        self._epoch_count = 0
        self._recorded: set[str] | None = None

    # -- checkpoints -------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def save(self) -> Path:
        train_state = {
            "optimizer": self.optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "strategy": self.strategy.state(),
        }
        if self.device.type == "cuda":
            train_state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.scaler is not None:
            train_state["scaler"] = self.scaler.state_dict()
        position: dict[str, Any] = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                                    "global_step": self.global_step}
        if self.step_in_epoch:  # mid-epoch: the running sums (a list: its order is the metrics rows' order)
            position.update(epoch_sums=[[k, v] for k, v in self._epoch_sums.items()], epoch_count=self._epoch_count)
        return save_checkpoint(self.checkpoint_dir, self.model, experiment=to_dict(self.config),
                               context=self.ctx.to_json(), position=position, train_state=train_state,
                               plugins=self.plugins, companions=self._save_vocabularies)

    def _save_vocabularies(self, folder: Path) -> dict[str, Any]:
        """Fitted word vocabularies, saved next to the weights: token ids mean nothing without them."""
        files = {}
        for field, modality in self.modalities.items():
            if getattr(modality, "vocab", None) is not None and callable(getattr(modality, "save_vocab", None)):
                name = f"vocab-{field}.json"
                modality.save_vocab(folder / name)
                files[field] = name
        return {"vocabularies": files} if files else {}

    def restore(self) -> bool:
        """Continue from ``out/checkpoint``; False when there is none yet."""
        if not (self.checkpoint_dir / "checkpoint.json").is_file():
            return False
        meta = verify_checkpoint(self.checkpoint_dir)  # weights, state and metadata of one save
        saved, now = meta.get("experiment", {}), to_dict(self.config)
        for section in ("model", "data"):
            if saved.get(section) != now.get(section):
                keys = sorted(k for k in set(saved.get(section, {})) | set(now.get(section, {}))
                              if saved.get(section, {}).get(k) != now.get(section, {}).get(k))
                raise ConfigError(f"--resume: the [{section}] table differs from the checkpoint in {self.checkpoint_dir} "
                                  f"(keys: {', '.join(keys)}); resume with the same config or use a new --out")
        load_module_weights(self.model, self.checkpoint_dir / "model.safetensors", what="--resume checkpoint")
        state = load_train_state(self.checkpoint_dir)
        if state is None:
            raise PolymodalError(f"{self.checkpoint_dir}: has weights but no training state; cannot resume")
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.strategy.load_state(state.get("strategy", {}))
        pos = meta["position"]
        self.epoch, self.step_in_epoch, self.global_step = pos["epoch"], pos["step_in_epoch"], pos["global_step"]
        self._epoch_sums = {str(k): float(v) for k, v in pos.get("epoch_sums", [])}
        self._epoch_count = int(pos.get("epoch_count", 0))
        return True

    # -- results -------------------------------------------------------------
    def _last_phase(self, default: str) -> str:
        """The training phase of the last stored row (the phase a finished run's test rows belong to)."""
        phase = default
        for r in self.store.read():
            if isinstance(r.get("conditions"), dict) and "phase" in r["conditions"]:
                phase = r["conditions"]["phase"]
        return phase

    def _record(self, split: str, figures: dict[str, float], phase: str, epoch: int) -> int:
        """Store one split's figures as rows, skipping any already stored; returns how many were written."""
        conditions = {
            "split": split, "epoch": epoch, "step": self.global_step,
            "strategy": self.tc.strategy, "phase": phase, "model": self.config.model.name,
            "fusion": self.config.model.fusion, "dataset": self.config.data.dataset, "seed": self.tc.seed,
        }
        if self._recorded is None:  # rows a killed process stored before its last checkpoint are not written twice
            self._recorded = {condition_key(r.get("axis", ""), r.get("metric", ""), r.get("conditions", {}))
                              for r in self.store.read()}
        written = 0
        for metric, value in figures.items():
            row = ResultRow("train", metric, float(value), run=self.config.name, conditions=conditions)
            key = condition_key(row.axis, row.metric, row.conditions)
            if key not in self._recorded:
                self._recorded.add(key)
                self.store.append(row.to_json())
                written += 1
        return written

    def _summarised_test(self) -> dict[str, float] | None:
        """The test figures of this checkpoint's summary (same epoch and step), or None when it has none."""
        try:
            summary = json.loads((self.out / SUMMARY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(summary, dict) or (summary.get("steps"), summary.get("epochs")) != (self.global_step,
                                                                                             self.epoch):
            return None
        test = (summary.get("metrics") or {}).get("test")
        if not isinstance(test, dict) or not test or not all(isinstance(v, (int, float)) for v in test.values()):
            return None
        return {str(k): float(v) for k, v in test.items()}

    def _eval(self, split: str | None) -> dict[str, float] | None:
        batches = self.data.eval_batches(split)
        if batches is None:
            return None
        return evaluate(self.model, batches, self.device, self.autocast)

    # -- the loop ----------------------------------------------------------------
    def _step(self, batch: Any) -> dict[str, float]:
        self.model.train()
        set_lr(self.optimizer, self.tc.optimizer.lr, lr_factor(self.global_step, self.total_steps, self.tc.schedule))
        self.optimizer.zero_grad(set_to_none=True)
        ctx = self.autocast() if self.autocast else contextlib.nullcontext()
        with ctx:
            loss, logs = self.strategy.loss(self.model, batch)
        if not torch.isfinite(loss.detach()):
            raise PolymodalError(
                f"training diverged: loss is {float(loss)} at step {self.global_step} (epoch {self.epoch + 1}); "
                "lower train.optimizer.lr or set train.grad_clip"
            )
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.tc.grad_clip:
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            if params:
                logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, self.tc.grad_clip))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return logs

    def fit(self, resume: bool = False) -> TrainOutcome:
        self.out.mkdir(parents=True, exist_ok=True)
        if self.tc.threads:
            torch.set_num_threads(self.tc.threads)
        resumed = resume and self.restore()
        if resumed:
            print(f"polymodal train: resuming at epoch {self.epoch + 1}, step {self.global_step}", file=sys.stderr)
        self.store.repair()  # a crash may have torn the last metrics line
        already_done = resumed and self.epoch >= self.tc.epochs
        started = time.perf_counter()
        samples = 0
        step_seconds = 0.0
        final: dict[str, dict[str, float]] = {}
        stopped = False
        phase = self.tc.strategy
        while self.epoch < self.tc.epochs and not stopped:
            if self.tc.max_steps and self.global_step >= self.tc.max_steps:
                break  # the step budget ended exactly at an epoch boundary
            phase = self.strategy.begin_epoch(self.model, self.epoch, self.optimizer)
            skip = self.step_in_epoch
            remaining = self.steps_per_epoch - skip
            if self.tc.max_steps:
                remaining = min(remaining, self.tc.max_steps - self.global_step)
            bar = Progress(remaining, f"epoch {self.epoch + 1}/{self.tc.epochs} [{phase}]", enabled=self.progress)
            if not skip:
                self._epoch_sums, self._epoch_count = {}, 0
            sums = self._epoch_sums
            loop_start = time.perf_counter()
            for batch in self.data.train_batches(self.epoch, skip):
                if self.tc.max_steps and self.global_step >= self.tc.max_steps:
                    stopped = True
                    break
                batch = batch.to(self.device)
                logs = self._step(batch)
                self.global_step += 1
                self.step_in_epoch += 1
                samples += len(batch)
                self._epoch_count += 1
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(1, samples=len(batch), loss=logs.get("loss", float("nan")))
                if self.tc.checkpoint_every and self.global_step % self.tc.checkpoint_every == 0:
                    self.save()
                if self.on_step is not None:
                    self.on_step(self.global_step)
            step_seconds += time.perf_counter() - loop_start
            count = self._epoch_count
            train_avg = {k: v / count for k, v in sums.items()} if count else {}
            bar.close(**{k: v for k, v in train_avg.items() if k in ("loss", "acc")})
            if self.tc.max_steps and self.global_step >= self.tc.max_steps:
                stopped = self.step_in_epoch < self.steps_per_epoch
            trained_epoch = self.epoch + 1
            if not stopped:
                self.epoch += 1
                self.step_in_epoch = 0
            if train_avg:
                self._record("train", train_avg, phase, trained_epoch)
                final["train"] = train_avg
            if self.tc.evaluate:
                val = self._eval(self.config.data.val_split)
                if val is not None:
                    self._record(self.config.data.val_split or "val", val, phase, trained_epoch)
                    final["val"] = val
                    print("  val: " + "  ".join(f"{k} {v:.4f}" for k, v in val.items()), file=sys.stderr)
            self.save()
        if already_done:
            # A process killed while writing the final test rows left training complete but the rows
            # missing: evaluate again (same weights, same figures) and store only what is not stored yet.
            phase = self._last_phase(phase)
        test = None
        if self.tc.evaluate:
            # A finished run whose summary holds its test figures has stored their rows too (the summary is
            # written after them): evaluating the whole test split again would only repeat what is stored.
            trained_out = self.epoch >= self.tc.epochs or self.global_step >= (self.tc.max_steps or float("inf"))
            test = self._summarised_test() if resumed and trained_out else None
            test = test if test is not None else self._eval(self.config.data.test_split)
        written = 0
        if test is not None:
            written = self._record(self.config.data.test_split or "test", test, phase, self.epoch)
            final["test"] = test
            if written or not already_done:
                print("  test: " + "  ".join(f"{k} {v:.4f}" for k, v in test.items()), file=sys.stderr)
        if already_done and not written:
            print("polymodal train: this run is already complete; nothing to do", file=sys.stderr)
        if not (self.checkpoint_dir / "checkpoint.json").is_file():
            self.save()
        seconds = time.perf_counter() - started
        outcome = TrainOutcome(self.out, self.checkpoint_dir, self.global_step, self.epoch, seconds,
                               samples / step_seconds if step_seconds > 0 else 0.0, final, step_seconds)
        if self.is_writer:
            (self.out / SUMMARY_FILE).write_text(json.dumps(outcome.to_json(), indent=2))
        return outcome


def prepare(config: ExperimentConfig, plugins: Any, source: str) -> tuple[PolymodalModel, ModelContext, TrainingData]:
    """Data, context and a freshly initialised (seeded) model for ``config``."""
    from polymodal_plugins.training.data_source import from_experiment

    data, fields, targets, modalities = from_experiment(config, plugins, source)
    ctx = ModelContext(plugins=plugins, fields=fields, targets=targets, source=source)
    seed_everything(config.train.seed)
    model = build_model(config.model, ctx)
    for field, modality in modalities.items():
        enc = model.encoders[field] if field in model.encoders else None
        pre = getattr(enc, "preprocess_config", None)
        configure = getattr(modality, "configure", None)
        if callable(pre) and callable(configure):
            configured = configure(pre())
            if configured is not None:
                data.collate.modalities[field] = configured
    return model, ctx, data


def train_experiment(path: str | Path, *, overrides: tuple[str, ...] | list[str] = (), out: str | Path | None = None,
                     resume: bool = False, plugins: Any | None = None, progress: bool = True) -> TrainOutcome:
    """Load an experiment file and train it: what ``polymodal train`` runs."""
    from polymodal.experiment import load_experiment
    from polymodal import build_plugin_manager

    config = load_experiment(path, overrides)
    if plugins is None:
        plugins = build_plugin_manager(config.plugins.settings())
    out_dir = Path(out) if out is not None else Path("runs") / config.name
    if out_dir.exists() and not resume and (out_dir / CHECKPOINT_DIR).exists():
        raise ConfigError(f"--out {out_dir}: already holds a training run; pass --resume to continue it "
                          "or choose another folder")
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    model, ctx, data = prepare(config, plugins, str(path))
    from polymodal_plugins.training.ddp import make_trainer

    trainer = make_trainer(config, model, ctx, data, out_dir, plugins=plugins, progress=progress,
                           modalities=data.collate.modalities)
    # One writer per training folder; under torchrun rank 0 writes for all.
    with writer_lock(out_dir, "polymodal train") if trainer.is_writer else contextlib.nullcontext():
        try:
            return trainer.fit(resume=resume)
        except OSError as exc:  # a checkpoint write: disk full, read-only, I/O error
            if is_storage_failure(exc):
                raise storage_error(out_dir, exc) from exc
            raise
