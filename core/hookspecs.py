"""Hook specifications: the whole contract between polymodal and its plugins.

Every registration hook receives one argument, ``register``: a callable that
validates what it is given *immediately* and records which plugin (and which
distribution) provided it. Its signature is::

    register(name, factory, *, description="", params=None, replaces=None,
             capabilities=(), tags=())

``params`` is the component's parameter class (an ``attrs`` class, or its
lazy ``"module:Class"`` string): suite tables for the component are checked
against it before anything runs, and ``polymodal info`` lists it.

``factory`` is either a callable or a lazy ``"module:attribute"`` string that
is imported only when the component is built, so listing components never
imports torch. ``replaces`` names the *plugin* whose component of the same
name this one deliberately overrides; without it, two providers of one name
are a conflict.

Hooks are only ever extended with new arguments; never give a hookimpl
argument a default value (pluggy does not pass defaults).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from polymodal.registry import Register

hookspec = pluggy.HookspecMarker("polymodal")


@hookspec
def register_modalities(register: Register) -> None:
    """Register modalities (image, text, audio, video, ...).

    The factory returns an object with ``name``, ``load(value, root) -> raw``
    (read one sample's raw value from a path or inline value, raising
    :class:`polymodal.errors.DataError` naming the file on failure),
    ``preprocess(raw) -> Tensor`` and ``collate(list[Tensor | None]) ->
    ModalityBatch`` (padded data plus a boolean mask; a missing value is an
    all-false mask row).
    """


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoder families.

    The factory takes the encoder's config parameters and returns a
    ``torch.nn.Module`` with an ``output_dim: int`` attribute whose
    ``forward(batch: ModalityBatch) -> Features`` returns token features
    ``[B, T, D]`` with a boolean mask ``[B, T]``.
    """


@hookspec
def register_fusions(register: Register) -> None:
    """Register fusion strategies.

    The factory is called as ``factory(input_dims: dict[str, int], **params)``
    and returns a ``torch.nn.Module`` with ``output_dim: int`` whose
    ``forward(features: dict[str, Features]) -> Tensor[B, output_dim]`` fuses
    per-modality token features; a modality whose mask is all false is
    missing and must be handled. ``interpretation() -> dict[str, Tensor]``
    exposes weights worth inspecting (modality weights, attention maps).
    """


@hookspec
def register_models(register: Register) -> None:
    """Register model architectures.

    The factory is called as ``factory(config: ModelConfig, ctx:
    ModelContext)`` and returns a :class:`polymodal.model_api.PolymodalModel`
    (a ``torch.nn.Module`` with ``loss(batch) -> (loss, logs)`` plus
    ``predict`` / ``embed`` / ``caption`` / ``generate`` as its capabilities
    require; the full contract is in :mod:`polymodal.model_api`). The spec's
    ``capabilities`` (e.g. ``classify``, ``embed``, ``caption``, ``generate``)
    say which evaluation axes the model supports, so suites are checked
    before anything runs. ``params=`` (an ``attrs`` class or its lazy
    ``"module:Class"`` string) declares the model's options: ``model.params``
    is checked against it when the suite is validated and handed to the
    factory as ``ctx.params``. The tag ``fusion`` says the model fuses its
    fields with ``model.fusion``.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Register metrics.

    The factory returns a ``torchmetrics.Metric`` (``update``/``compute``/
    ``reset``, states synchronised across processes by torchmetrics).
    """


@hookspec
def register_axes(register: Register) -> None:
    """Register evaluation axes.

    The factory takes the axis parameters from the suite and returns an object
    with ``requires: frozenset[str]`` (model capabilities needed) and
    ``run(model, data, ctx) -> Iterable[ResultRow]``.
    """


@hookspec
def register_attacks(register: Register) -> None:
    """Register adversarial attacks used by the adversarial robustness axis.

    The factory takes attack parameters (epsilon, steps, ...) and returns a
    callable ``attack(loss_fn, inputs) -> perturbed inputs``.
    """


@hookspec
def register_corruptions(register: Register) -> None:
    """Register corruptions used by the noise-robustness axis.

    The factory is a function ``fn(raw, severity, rng) -> raw`` that damages
    one raw sample value (what a modality's ``load`` returns) at severity
    1..5, drawing randomness only from the ``numpy.random.Generator`` it is
    given. ``tags`` name the raw formats it accepts (the ``raw_format`` trait
    of a modality, e.g. ``rgb``); name it ``<format>.<corruption>``: suites
    and result rows use the part after the format.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets.

    The factory is called as ``factory(root=..., split=..., **params)`` and
    returns a map-style dataset whose items are ``dict[modality, raw value]``
    plus label keys.
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register trainers: what turns a run of a suite into a trained model.

    The factory is called as ``factory(config, plugins, out_dir, *, resume,
    progress, device, limit)`` with a validated
    :class:`polymodal.experiment.ExperimentConfig` and returns a
    :class:`polymodal.runner.TrainedRun` (model, model context, evaluation
    data and training figures). Resuming an already finished run must not
    train again. The loop and the contract: ``docs/kinds/trainer.md``.
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Register training strategies, chosen by ``[train] strategy = "<name>"``.

    Pass ``params=`` an ``attrs`` class (or its lazy ``"module:Class"``
    string): the experiment's ``[train.strategy_params]`` table is checked
    against it when the suite is validated, before anything trains. The
    factory is called as ``factory(params, ctx)`` with an instance of that
    class and a :class:`polymodal.strategy.StrategyContext`, and returns an
    object with ``begin_epoch(model, epoch, optimizer) -> phase``,
    ``loss(model, batch) -> (loss, logs)``, ``state() -> dict`` and
    ``load_state(state)`` (see :class:`polymodal.strategy.Strategy`).
    """


@hookspec
def register_reporters(register: Register) -> None:
    """Register reporters.

    The factory returns a callable ``report(results_dir, out_path) -> Path``
    that renders a results folder into a file.
    """


@hookspec
def register_report_sections(register: Register) -> None:
    """Register report sections: how one artifact kind is rendered in the HTML and Markdown reports.

    The factory takes no arguments and returns a
    :class:`polymodal.report_sections.ReportSection` naming the artifact kind
    it renders (what an axis passes to ``ctx.artifact(kind, ...)``), its
    title, and ``html(artifacts, page) -> str`` and optionally
    ``markdown(artifacts, page) -> str`` renderers. The reporters render
    artifacts only through these sections, so a plugin's artifacts appear in
    the reports exactly as the built-in ones do.
    """


@hookspec
def register_suites(register: Register) -> None:
    """Register named evaluation suites.

    The factory is a path (``str`` or ``Path``) to a suite TOML file, or a
    callable returning one, listed by ``polymodal list suites``.
    """


@hookspec
def register_commands(register: Register) -> None:
    """Register CLI sub-commands.

    The factory is called with an ``argparse.ArgumentParser`` for the
    sub-command, adds its arguments, and returns a handler
    ``handler(args) -> int`` (the exit code). It runs when the CLI builds its
    parser, so it must stay light: import heavy modules inside the handler.
    """
