"""Contract checkers for the kinds around a run: corruptions, reporters (and the others that drive or render one).

The same idea as :mod:`polymodal.contract_checks` (and re-exported with it
by :mod:`polymodal.testing`): one call builds the component, runs it on small
synthetic inputs and raises :class:`~polymodal.contract_checks.ContractError`
naming the component, the check and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polymodal.contract_checks import ContractError, _name, _require

#: A hostile string put into every text a reporter reads: escaping must keep it inert.
HOSTILE = '<script>alert("polymodal")</script> | `x` & "q"'


def _spec(kind: str, component: Any, plugins: Any) -> tuple[Any, str, frozenset[str]]:
    """(object, display name, tags) for a registered name, a ComponentSpec, or the object itself."""
    from polymodal.registry import ComponentSpec

    if isinstance(component, str):
        if plugins is None:
            from polymodal.plugins import get_plugins

            plugins = get_plugins()
        component = plugins.get(kind, component)
    if isinstance(component, ComponentSpec):
        return component.load(), component.name, component.tags
    return component, _name(component), frozenset()


def _synthetic_raw(raw_format: str) -> Any:
    """A small raw value of ``raw_format`` (what a modality's ``load`` returns), or None if unknown."""
    import numpy as np

    from polymodal.data import AudioClip

    rng = np.random.default_rng(0)
    values: dict[str, Callable[[], Any]] = {
        "rgb": lambda: rng.integers(1, 255, size=(24, 20, 3), dtype=np.uint8),
        "frames": lambda: rng.integers(1, 255, size=(6, 8, 8, 3), dtype=np.uint8),
        "waveform": lambda: AudioClip((0.5 * np.sin(np.linspace(0, 60, 1600))[None]
                                       + 0.05 * rng.standard_normal((1, 1600))).astype(np.float32), 16000),
        "text": lambda: "a small red square sits to the left of a big blue circle on the table",
        "depth": lambda: rng.uniform(0.5, 4.0, size=(16, 16)).astype(np.float32),
    }
    return values[raw_format]() if raw_format in values else None


def _arrays(value: Any) -> list[Any]:
    """The numpy arrays inside a raw value (itself, an AudioClip's samples, a list of frames)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return [value]
    if hasattr(value, "samples"):
        return [np.asarray(value.samples)]
    if isinstance(value, list | tuple):
        return [a for v in value for a in _arrays(v)]
    return []


def _copy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def _equal(a: Any, b: Any) -> bool:
    import numpy as np

    if type(a) is not type(b):
        return False
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    if arrays_a or arrays_b:
        return len(arrays_a) == len(arrays_b) and all(
            x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
            for x, y in zip(arrays_a, arrays_b, strict=True))
    return bool(a == b)


def check_corruption(corruption: Any, raw: Any = None, *, raw_format: str | None = None, plugins: Any = None,
                     severities: tuple[int, ...] = (1, 2, 3, 4, 5)) -> dict[int, Any]:
    """Check a corruption (registered name, spec or ``fn(raw, severity, rng)``); returns the output per severity.

    ``raw`` defaults to a small synthetic value of the raw format (from
    ``raw_format`` or the spec's tags: rgb, frames, waveform, text, depth).
    Checks, at each severity: a value of the input's type, arrays keeping
    their shape and dtype (a string stays a string) with finite values; the
    input left unchanged; the same generator seed gives the same output
    whatever numpy's global generator holds (randomness only from ``rng``);
    and the most severe level changes the input.
    """
    import numpy as np

    fn, name, tags = _spec("corruptions", corruption, plugins)
    who = f"corruption {name}"
    _require(callable(fn), who, "type", "a function fn(raw, severity, rng) -> raw")
    if raw is None:
        formats = [raw_format] if raw_format else [t for t in sorted(tags) if _synthetic_raw(t) is not None]
        _require(formats, who, "raw", "a raw value (pass raw=...) or a raw_format tag the checker knows "
                 "(rgb, frames, waveform, text, depth)")
        raw = _synthetic_raw(formats[0])
        _require(raw is not None, who, "raw_format", f"a raw format the checker knows, got {formats[0]!r} "
                 "(pass raw=...)")
    before = _copy(raw)
    outputs = {}
    global_state = np.random.get_state()
    try:
        _run_severities(fn, who, raw, before, severities, outputs)
    finally:
        np.random.set_state(global_state)
    _require(not _equal(outputs[max(severities)], raw), who, f"severity {max(severities)}",
             "a changed value (the most severe level must damage the input)")
    return outputs


def _run_severities(fn: Callable[..., Any], who: str, raw: Any, before: Any, severities: tuple[int, ...],
                    outputs: dict[int, Any]) -> None:
    import numpy as np

    for severity in severities:
        np.random.seed(severity)  # a corruption drawing from the global generator gives different outputs
        out = fn(raw, severity, np.random.default_rng(7))
        where = f"severity {severity}"
        _require(_equal(raw, before), who, where, "the input left unchanged (return a new value; copy first)")
        _require(type(out) is type(raw), who, where, f"a {type(raw).__name__} like the input, got {type(out).__name__}")
        for got, want in zip(_arrays(out), _arrays(raw), strict=False):
            _require(got.shape == want.shape and got.dtype == want.dtype, who, where,
                     f"an array of shape {want.shape} and dtype {want.dtype}, got {got.shape} {got.dtype}")
            _require(not np.issubdtype(got.dtype, np.floating) or bool(np.isfinite(got).all()), who, where,
                     "finite values (no NaN or inf)")
        _require(len(_arrays(out)) == len(_arrays(raw)), who, where, "as many arrays as the input holds")
        np.random.seed(severity + 100)
        again = fn(raw, severity, np.random.default_rng(7))
        _require(_equal(out, again), who, f"{where}: determinism",
                 "the same rng seed gives the same output (draw randomness only from the rng argument)")
        outputs[severity] = out


def tiny_results_dir(root: Path, text: str = HOSTILE) -> Path:
    """A results folder with two runs and a manifest, every free text (run names, conditions) holding ``text``."""
    from polymodal.results import JsonlStore

    root.mkdir(parents=True, exist_ok=True)
    store = JsonlStore(root / "results.jsonl")
    for run, value in ((f"clf/{text}", 0.75), ("other/seed=0", 0.5)):
        store.append({"schema": 1, "run": run, "axis": "task", "metric": "accuracy", "value": value,
                      "conditions": {"seed": 0, "note": text}, "extra": {"why": text}})
    (root / "manifest.json").write_text(json.dumps({"suite": text, "polymodal": "test"}), encoding="utf-8")
    return root


def check_reporter(reporter: Any, tmp_dir: str | Path, *, plugins: Any = None, suffix: str | None = None) -> Path:
    """Check a reporter (registered name, spec, factory or plain function) on a tiny results folder.

    Builds it as ``polymodal report`` does (a spec is built; an object that
    is a class is instantiated), calls ``report(results_dir, out_path)``
    with results whose run names, conditions and manifest hold hostile text,
    and checks: the returned path is the file written, non-empty and
    readable as UTF-8; no temporary file is left beside it (write a
    temporary file, then ``os.replace``); rendering again replaces the file;
    an ``.html`` report never contains the hostile ``<script>`` unescaped;
    a ``.json`` report parses. Returns the path written.
    """
    import inspect

    obj, name, _ = _spec("reporters", reporter, plugins)
    who = f"reporter {name}"
    report = obj() if inspect.isclass(obj) else obj
    _require(callable(report), who, "type", "a callable report(results_dir, out_path) -> Path")
    root = tiny_results_dir(Path(tmp_dir) / "results")
    out_dir = Path(tmp_dir) / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    from polymodal.report import DEFAULT_FILE_NAMES

    target = out_dir / (f"report{suffix}" if suffix else DEFAULT_FILE_NAMES.get(name, f"report.{name}"))
    target.write_text("previous report\n", encoding="utf-8")
    written = report(root, target)
    _require(written is not None and Path(written) == target, who, "return value",
             f"the path written ({target}), got {written!r}")
    _require(target.is_file() and target.stat().st_size > 0, who, "output", "a non-empty file at out_path")
    try:
        text = target.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ContractError(f"{who}: output: UTF-8 text") from None
    _require(text != "previous report\n", who, "output", "the previous file at out_path replaced")
    leftovers = sorted(p.name for p in out_dir.iterdir() if p != target)
    _require(not leftovers, who, "atomic write",
             f"only out_path in its folder afterwards (write a temporary file, then os.replace); left {leftovers}")
    if target.suffix in (".html", ".htm"):
        import re

        # JSON data blocks may hold the text (with "</" escaped, so it cannot close the block); nothing else may.
        outside = re.sub(r'<script type="application/(?:ld\+)?json"[^>]*>.*?</script>', "", text, flags=re.S)
        _require("<script>alert(" not in outside, who, "escaping",
                 "run names, conditions and manifest text HTML-escaped (found a raw <script> from the results)")
    if target.suffix == ".json":
        try:
            json.loads(text)
        except ValueError as exc:
            raise ContractError(f"{who}: output: valid JSON ({exc})") from None
    again = report(root, target)
    _require(Path(again) == target and target.is_file(), who, "second render",
             "rendering again over an existing report replaces it")
    return target


class _CheckPage:
    """A :class:`~polymodal.report_sections.SectionPage` stand-in: images and charts become escaped placeholders."""

    def __init__(self, folder: Any, markdown: bool):
        self.folder = folder
        self.colours: dict[str, str] = {} if markdown else {r.id: "#336699" for r in folder.runs}
        self.markdown = markdown

    def step(self, message: str) -> None:
        """Progress of a slow section (the HTML page reports it; nothing here)."""

    def image(self, relative: str | None, alt: str, cls: str = "artifact") -> str:
        from html import escape

        if not relative:
            return ""
        return f"![image]({relative})" if self.markdown else f'<img class="{escape(cls)}" alt="{escape(alt)}">'

    def chart(self, chart: Any, alt: str) -> str:
        from html import escape

        return "" if chart is None else f'<figure class="chart" title="{escape(alt)}"></figure>'


def _hostile(value: Any) -> Any:
    """``value`` with HOSTILE appended to every free text (not to paths or identifiers without spaces)."""
    if isinstance(value, str):
        return value + " " + HOSTILE if " " in value.strip() else value
    if isinstance(value, list):
        return [_hostile(v) for v in value]
    if isinstance(value, dict):
        return {k: _hostile(v) for k, v in value.items()}
    return value


def check_report_section(section: Any, results_dir: str | Path, *, plugins: Any = None) -> tuple[str, str | None]:
    """Check a report section (registered name, spec, factory or ReportSection) on a results folder.

    ``results_dir`` must hold artifacts of the section's kind (as ``polymodal
    run`` writes them). Checks: the factory returns a ``ReportSection`` with a
    non-empty ``artifact_kind`` and ``title``; ``html`` renders those
    artifacts -- with hostile text put into the run names and free text --
    into a non-empty string with that text escaped, and no artifacts into a
    string; ``markdown``, when given, renders them into a non-empty string
    (and no artifacts into a string). Returns (html, markdown).
    """
    import attrs

    from polymodal.report import load_results
    from polymodal.report_sections import ReportSection

    obj, name, _ = _spec("report_sections", section, plugins)
    who = f"report section {name}"
    built = obj if isinstance(obj, ReportSection) else obj()
    _require(isinstance(built, ReportSection), who, "factory",
             f"a polymodal.report_sections.ReportSection, got {type(built).__name__}")
    _require(isinstance(built.artifact_kind, str) and built.artifact_kind, who, "artifact_kind", "a non-empty str")
    _require(isinstance(built.title, str) and built.title.strip(), who, "title", "a non-empty str")
    _require(callable(built.html), who, "html", "a renderer html(artifacts, page) -> str")
    _require(built.markdown is None or callable(built.markdown), who, "markdown",
             "None or a renderer markdown(artifacts, page) -> str")
    folder = load_results(results_dir)
    artifacts = [attrs.evolve(a, run=f"{a.run} {HOSTILE}", data=_hostile(a.data))
                 for a in folder.artifacts_of(built.artifact_kind)]
    _require(artifacts, who, "results", f"{results_dir} holds artifacts of kind {built.artifact_kind!r} to render")
    bodies: list[str | None] = []
    for markdown, renderer in ((False, built.html), (True, built.markdown)):
        if renderer is None:
            bodies.append(None)
            continue
        label = "markdown" if markdown else "html"
        page = _CheckPage(folder, markdown)
        empty = renderer([], page)
        _require(isinstance(empty, str), who, f"{label}([])", f"a str for no artifacts, got {type(empty).__name__}")
        body = renderer(artifacts, page)
        _require(isinstance(body, str) and body.strip(), who, label,
                 f"a non-empty str for {len(artifacts)} artifacts of kind {built.artifact_kind!r}")
        _require(markdown or "<script>alert(" not in body, who, f"{label}: escaping",
                 "text from the results HTML-escaped (found a raw <script> from a run name or artifact data)")
        bodies.append(body)
    return bodies[0] or "", bodies[1]


def _parse(parser: Any, argv: list[str]) -> tuple[Any, int | None, str, str]:
    """(namespace or None, SystemExit code or None, stdout, stderr) of ``parser.parse_args(argv)``."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return parser.parse_args(argv), None, out.getvalue(), err.getvalue()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            return None, code, out.getvalue(), err.getvalue()


def check_command(command: Any, bad_input: list[str] | None = None, *, plugins: Any = None,
                  name: str | None = None) -> str:
    """Check a CLI command (registered name, or a factory ``factory(parser) -> handler``) in the real parser.

    Builds the ``polymodal`` parser as every CLI call does (a factory is
    registered under ``name``, default its function name) and checks:
    ``polymodal NAME --help`` prints usage and exits 0; an unknown option is
    an argparse error (one ``error:`` line after the usage) with exit 2;
    and, given ``bad_input`` (arguments a user could get wrong, e.g. a
    missing folder), the handler raises a one-line ``PolymodalError``, which
    the CLI prints as ``polymodal: error: ...`` with exit 2, instead of a
    traceback. Returns the help text.
    """
    from polymodal.cli import build_parser
    from polymodal.errors import PolymodalError

    if not isinstance(command, str):
        from polymodal import component
        from polymodal.testing import make_plugin_manager

        name = name or getattr(command, "__name__", "checked-command").strip("_").replace("_", "-")
        plugins = make_plugin_manager(component("commands", name, command), names=["checked-command"])
        command = name
    elif plugins is None:
        from polymodal.plugins import get_plugins

        plugins = get_plugins()
    who = f"command {command}"
    factory = plugins.get("commands", command).load()
    import argparse

    _require(callable(factory(argparse.ArgumentParser(prog=f"polymodal {command}"))), who, "factory",
             "factory(parser) returns the handler(args) -> int")
    parser = build_parser(plugins)
    _, code, out, err = _parse(parser, [command, "--help"])
    _require(code == 0 and "usage:" in out, who, "--help", f"usage on stdout and exit 0, got exit {code} {err[-200:]!r}")
    _, code, _, err = _parse(parser, [command, "--no-such-option-for-the-checker"])
    lines = [line for line in err.splitlines() if line.strip()]
    _require(code == 2 and lines and "error:" in lines[-1] and "Traceback" not in err, who, "unknown option",
             f"argparse's one-line 'error:' and exit 2, got exit {code} {err[-200:]!r}")
    if bad_input is not None:
        args, code, _, err = _parse(parser, [command, *bad_input])
        if args is not None:
            try:
                handler_code = args.handler(args)
            except PolymodalError as exc:
                _require("\n" not in str(exc).strip(), who, f"bad input {bad_input}",
                         f"a one-line error message, got {str(exc)!r}")
            except Exception as exc:  # noqa: BLE001 - the point: the user would see a traceback
                raise ContractError(f"{who}: bad input {bad_input}: a PolymodalError (one line, exit 2), got "
                                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
            else:
                raise ContractError(f"{who}: bad input {bad_input}: a PolymodalError (one line, exit 2), got exit "
                                    f"{handler_code!r}")
        else:
            _require(code == 2, who, f"bad input {bad_input}", f"exit 2 from the parser, got {code}")
    return out


def _registered(kind: str, component: Any, plugins: Any, name: str | None) -> tuple[str, Any]:
    """(registered name, manager): a name is looked up as is; an object is registered under ``name``."""
    if isinstance(component, str):
        if plugins is None:
            from polymodal.plugins import get_plugins

            plugins = get_plugins()
        return component, plugins
    from polymodal import component as make_component
    from polymodal.testing import make_plugin_manager

    name = name or getattr(component, "__name__", "checked").strip("_").replace("_", "-").lower()
    extra = make_component(kind, name, component)
    return name, make_plugin_manager(extra, entry_points=True, names=[f"checked-{kind}"])


def check_suite(suite: Any, *, plugins: Any = None, name: str | None = None) -> Any:
    """Check a named suite (registered name, or its factory: a path or a callable returning one).

    Checks: the factory gives a ``str`` or ``Path`` to an existing absolute
    file (package data located with ``importlib.resources``, never relative to
    the working directory); the file loads and every name, capability and
    parameter in it validates as ``polymodal run NAME`` does before
    training. Returns the expanded suite.
    """
    import tempfile

    from polymodal.runner import RunOptions, Runner
    from polymodal.suite import expand_suite, load_suite_dict

    name, plugins = _registered("suites", suite, plugins, name)
    who = f"suite {name}"
    target = plugins.get("suites", name).load()
    path = target() if callable(target) else target
    _require(isinstance(path, str | Path), who, "factory", f"a str or Path to the suite file, got {type(path).__name__}")
    path = Path(path)
    _require(path.is_absolute(), who, "path", f"an absolute path (from importlib.resources), got {str(path)!r}")
    _require(path.is_file(), who, "path", f"an existing suite file, got {path}")
    from polymodal.errors import PolymodalError

    try:
        expanded = expand_suite(load_suite_dict(path), str(path))
        with tempfile.TemporaryDirectory(prefix="polymodal-check-suite-") as out:
            Runner(expanded, plugins, RunOptions(out=Path(out), progress=False)).validate()
    except PolymodalError as exc:
        raise ContractError(f"{who}: validation: a suite that `polymodal run` accepts; {exc}") from None
    return expanded


def _tiny_experiment() -> Any:
    from polymodal.experiment import experiment_from_dict

    import tomllib

    # An experiment is TOML data; the tiny one a trainer is checked on reads like a suite's run.
    return experiment_from_dict(tomllib.loads(_TINY_EXPERIMENT))


_TINY_EXPERIMENT = """
[data]
dataset = "shapes"
params = { num_samples = 16, image_size = 16 }
batch_size = 8
[model]
name = "fusion-classifier"
encoders.image = { name = "cnn", params = { width = 4, depth = 1, output_dim = 8 } }
[train]
epochs = 1
threads = 1
"""


def check_trainer(trainer: Any, tmp_dir: str | Path, *, plugins: Any = None, config: Any = None,
                  name: str | None = None, limit: int = 8) -> Any:
    """Check a trainer (registered name or factory) on a tiny experiment; returns the first TrainedRun.

    ``config`` defaults to a tiny classifier on 16 synthetic shapes (one
    epoch). Calls the factory as the runner does, then again with
    ``resume=True`` on the same folder, and checks: a
    ``polymodal.runner.TrainedRun`` whose ``model`` is a ``torch.nn.Module``
    and whose ``figures`` map split -> {metric: number}; the run's folder is
    used (checkpoints or logs in ``out_dir``); the resumed call gives the
    same weights (a finished run continues from its folder, it is not trained
    differently).
    """
    import numbers

    import torch

    from polymodal.runner import TrainedRun

    name, plugins = _registered("trainers", trainer, plugins, name)
    who = f"trainer {name}"
    factory = plugins.get("trainers", name).load()
    config = _tiny_experiment() if config is None else config
    out_dir = Path(tmp_dir) / "run"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for resume in (False, True):
        run = factory(config, plugins, out_dir, resume=resume, progress=False, device=None, limit=limit)
        where = "resume=True" if resume else "return value"
        _require(isinstance(run, TrainedRun), who, where,
                 f"a polymodal.runner.TrainedRun(model, model_ctx, data, figures), got {type(run).__name__}")
        _require(isinstance(run.model, torch.nn.Module), who, f"{where}: model",
                 f"the trained torch.nn.Module, got {type(run.model).__name__}")
        figures = run.figures
        _require(isinstance(figures, dict) and all(
            isinstance(split, str) and isinstance(values, dict) and all(
                isinstance(k, str) and isinstance(v, numbers.Real) and not isinstance(v, bool)
                for k, v in values.items()) for split, values in figures.items()), who, f"{where}: figures",
            "a dict split -> {metric: number} (plain numbers, not tensors; {} is fine)")
        runs.append(run)
    _require(any(out_dir.iterdir()), who, "out_dir", "checkpoints or logs kept in the run's folder (for --resume)")
    first, again = (dict(r.model.state_dict()) for r in runs)
    _require(first.keys() == again.keys() and all(torch.allclose(first[k].float(), again[k].float(), atol=1e-6)
                                                   for k in first), who, "resume=True",
             "the same weights as the finished run (continue from out_dir instead of training anew)")
    return runs[0]


__all__ = ["HOSTILE", "check_command", "check_corruption", "check_report_section", "check_reporter",
           "check_suite", "check_trainer", "tiny_results_dir"]
