"""The corruption and reporter contract checkers: every installed one passes, broken ones are caught."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polymodal.plugins import get_plugins
from polymodal.report_sections import ReportSection
from polymodal import PolymodalError
from polymodal.testing import (
    ContractError,
    check_command,
    check_corruption,
    check_report_section,
    check_reporter,
    check_suite,
    check_trainer,
    tiny_results_dir,
)

CORRUPTIONS = get_plugins().registry("corruptions").names()
REPORTERS = get_plugins().registry("reporters").names()


def test_built_ins_and_contrib_are_covered():
    assert {"rgb.blur", "text.typos", "waveform.clipping", "frames.frame_drop"} <= set(CORRUPTIONS)
    assert {"depth.holes", "depth.sensor_noise"} <= set(CORRUPTIONS)  # contrib/polymodal-depth
    assert {"html", "json", "markdown"} <= set(REPORTERS)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_corruption_passes(name):
    outputs = check_corruption(name)
    assert sorted(outputs) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("name", REPORTERS)
def test_every_reporter_passes(name, tmp_path):
    assert check_reporter(name, tmp_path).is_file()


def _image(raw, severity, rng):
    return np.clip(raw.astype(np.int16) + rng.integers(-severity * 10, severity * 10, raw.shape), 0, 255).astype(
        np.uint8)


def test_a_good_plain_function_passes():
    raw = np.full((8, 8, 3), 100, dtype=np.uint8)
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    assert check_corruption(_image, raw)[5].dtype == np.uint8
    assert np.random.random() == expected  # the checker leaves numpy's global generator as it was


def _in_place(raw, severity, rng):
    raw[0] = 0
    return raw.copy()


def _global_random(raw, severity, rng):
    return (raw + np.random.randint(0, 5, raw.shape)).astype(np.uint8)


def _float_out(raw, severity, rng):
    return raw / 255.0


def _nan(raw, severity, rng):
    out = raw.astype(np.float32)
    out[0, 0] = np.nan
    return out


def _identity(raw, severity, rng):
    return raw.copy()


@pytest.mark.parametrize(("fn", "message"), [
    (_in_place, "severity 1: the input left unchanged"),
    (_global_random, "severity 1: determinism: the same rng seed"),
    (_float_out, "shape (8, 8, 3) and dtype uint8"),
    (_identity, "severity 5: a changed value"),
])
def test_broken_corruptions_are_caught(fn, message):
    with pytest.raises(ContractError, match=f"corruption {fn.__name__}: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        check_corruption(fn, np.full((8, 8, 3), 100, dtype=np.uint8))


def test_nan_and_unknown_raw_format_are_caught():
    with pytest.raises(ContractError, match="finite values"):
        check_corruption(_nan, np.full((4, 4), 1.0, dtype=np.float32))
    with pytest.raises(ContractError, match="raw format the checker knows, got 'point_cloud'"):
        check_corruption(_identity, raw_format="point_cloud")


def _unescaped(results_dir, out_path):
    rows = [json.loads(line) for line in (Path(results_dir) / "results.jsonl").read_text().splitlines()]
    Path(out_path).write_text("<ul>" + "".join(f"<li>{r['run']}</li>" for r in rows) + "</ul>", encoding="utf-8")
    return Path(out_path)


def _leaves_temp(results_dir, out_path):
    Path(str(out_path) + ".tmp").write_text("half", encoding="utf-8")
    Path(out_path).write_text("done", encoding="utf-8")
    return Path(out_path)


def _returns_nothing(results_dir, out_path):
    Path(out_path).write_text("done", encoding="utf-8")


def _bad_json(results_dir, out_path):
    Path(out_path).write_text("{not json", encoding="utf-8")
    return Path(out_path)


@pytest.mark.parametrize(("fn", "suffix", "message"), [
    (_unescaped, ".html", "escaping: run names"),
    (_leaves_temp, ".txt", "atomic write: only out_path"),
    (_returns_nothing, ".txt", "return value: the path written"),
    (_bad_json, ".json", "output: valid JSON"),
])
def test_broken_reporters_are_caught(fn, suffix, message, tmp_path):
    with pytest.raises(ContractError, match=f"reporter {fn.__name__}: {message}"):
        check_reporter(fn, tmp_path, suffix=suffix)


@pytest.fixture(scope="module")
def results_with_every_artifact(tmp_path_factory):
    """The reports fixture's folder (images, retrieval, captions, importance...) plus answers and transcripts."""
    from reports_fixture import write_results_folder

    root = tmp_path_factory.mktemp("sections")
    write_results_folder(root)
    extra = [{"run": "late/seed=0", "axis": "task", "kind": kind, "data": data} for kind, data in (
        ("answer_example", {"question": "what colour is the big square?", "reply": "it is red"}),
        ("transcript_example", {"reference": "turn left at the door", "transcript": "turn left at the floor"}))]
    with (root / "artifacts.jsonl").open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(a) + "\n" for a in extra)
    return root


@pytest.mark.parametrize("name", get_plugins().registry("report_sections").names())
def test_every_report_section_passes(name, results_with_every_artifact):
    html, _ = check_report_section(name, results_with_every_artifact)
    assert html


def _section(html, markdown=None, kind="depth_histogram", title="Depth"):
    return ReportSection(kind, title, html=html, markdown=markdown)


@pytest.mark.parametrize(("section", "message"), [
    (lambda: "not a section", "factory: a polymodal.report_sections.ReportSection, got str"),
    (_section(lambda arts, page: "x", title=" "), "title: a non-empty str"),
    (_section(lambda arts, page: "".join(f"<p>{a.run}</p>" for a in arts)), "html: escaping"),
    (_section(lambda arts, page: ""), "html: a non-empty str for 1 artifacts of kind 'depth_histogram'"),
    (_section(lambda arts, page: "<p>ok</p>", lambda arts, page: None), r"markdown\(\[\]\): a str"),
    (_section(lambda arts, page: "<p>ok</p>", kind="nothing_here"), "holds artifacts of kind 'nothing_here'"),
])
def test_broken_report_sections_are_caught(section, message, tmp_path):
    tiny_results_dir(tmp_path)
    (tmp_path / "artifacts.jsonl").write_text(json.dumps(
        {"run": "a/seed=0", "axis": "depth", "kind": "depth_histogram", "data": {"counts": [1, 2]}}) + "\n")
    with pytest.raises(ContractError, match="report section .*: .*" + message):
        check_report_section(section, tmp_path)


#: Arguments a user could get wrong, per built-in command (None: only --help and an unknown option).
BAD_INPUT = {"compare": ["/nonexistent/a", "/nonexistent/b"], "new-plugin": ["Bad Name!"],
             "report": ["/nonexistent"], "train": ["/nonexistent.toml"], "data": None, "score": None}


@pytest.mark.parametrize("name", get_plugins().registry("commands").names())
def test_every_command_passes(name):
    assert "usage:" in check_command(name, BAD_INPUT.get(name))


def _folder_command(parser):
    parser.add_argument("folder")

    def handler(args):
        if args.folder == "crash":
            raise ValueError("boom")
        if args.folder == "quiet":
            return 1
        raise PolymodalError(f"{args.folder}: no results.jsonl")

    return handler


def _no_handler(parser):
    parser.add_argument("folder")


@pytest.mark.parametrize(("factory", "bad", "message"), [
    (_folder_command, ["missing"], None),
    (_folder_command, ["crash"], r"bad input \['crash'\]: a PolymodalError .*got ValueError: boom"),
    (_folder_command, ["quiet"], r"bad input \['quiet'\]: a PolymodalError .*got exit 1"),
    (_no_handler, None, "factory: factory\\(parser\\) returns the handler"),
])
def test_broken_commands_are_caught(factory, bad, message):
    if message is None:
        assert "folder" in check_command(factory, bad, name="folder-command")
        return
    with pytest.raises(ContractError, match="command .*: " + message):
        check_command(factory, bad)


@pytest.mark.parametrize("name", get_plugins().registry("suites").names())
def test_every_suite_passes(name):
    assert check_suite(name).runs


def test_the_default_trainer_passes(tmp_path):
    run = check_trainer("default", tmp_path)
    assert run.figures["train"]["loss"] > 0


def _relative_suite():
    return "suites/tiny.toml"


def _missing_suite():
    return Path("/nonexistent/suite.toml")


@pytest.mark.parametrize(("factory", "message"), [
    (_relative_suite, "path: an absolute path"),
    (_missing_suite, "path: an existing suite file"),
    (lambda: 42, "factory: a str or Path to the suite file, got int"),
    ("typo", "validation: .*unknown dataset 'shapez'"),
])
def test_broken_suites_are_caught(factory, message, tmp_path):
    if factory == "typo":
        (tmp_path / "typo.toml").write_text('[defaults.data]\ndataset = "shapez"\n[runs.clf]\n'
                                            'model.name = "fusion-classifier"\n[axes.task]\n')
        factory = (lambda: tmp_path / "typo.toml")
    with pytest.raises(ContractError, match="(?s)suite .*: " + message):
        check_suite(factory, name="checked")


def _fake_trainer(figures=None, model=True, noise=False):
    """A trainer that does not train: returns a small module (optionally re-randomised each call)."""
    from torch import nn

    from polymodal.runner import TrainedRun

    def train(config, plugins, out_dir, *, resume, progress, device=None, limit=None):
        (out_dir / "checkpoint.txt").write_text("step 1")
        module = nn.Linear(2, 2)
        if not noise:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
        return TrainedRun(module, None, None, {"train": {"loss": 1.0}} if figures is None else figures) \
            if model else module

    return train


@pytest.mark.parametrize(("trainer", "message"), [
    (_fake_trainer(), None),
    (_fake_trainer(model=False), "return value: a polymodal.runner.TrainedRun.*got Linear"),
    (_fake_trainer(figures={"loss": 1.0}), "return value: figures: a dict split -> {metric: number}"),
    (_fake_trainer(noise=True), "resume=True: the same weights"),
])
def test_broken_trainers_are_caught(trainer, message, tmp_path):
    if message is None:
        assert check_trainer(trainer, tmp_path, config=object()).figures == {"train": {"loss": 1.0}}
        return
    with pytest.raises(ContractError, match="trainer train: " + message.replace("{", r"\{").replace("}", r"\}")):
        check_trainer(trainer, tmp_path, config=object())
