"""Reading results folders, the leaderboard rule, the JSON and Markdown reporters, and the CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from reports_fixture import write_results_folder

from polymodal.cli import main
from polymodal.errors import DataError, UnknownNameError
from polymodal.leaderboard import build_leaderboard, higher_is_better
from polymodal.report import load_results, render, write_reports
from polymodal.results import JsonlStore, ResultRow
from polymodal.stats import PER_SAMPLE_KEY, encode_per_sample

ATTENTION = "fusion-classifier/attention/seed0"
CONCAT = "fusion-classifier/concat/seed0"
FAILED = "fusion-classifier/tensor/seed0"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results_folder(tmp_path_factory.mktemp("results"))


def _minimal(tmp_path: Path, rows: list[ResultRow]) -> Path:
    store = JsonlStore(tmp_path / "results.jsonl")
    for r in rows:
        store.append(r.to_json())
    return tmp_path


def test_load_results_reads_runs_rows_artifacts_and_failures(results: Path) -> None:
    folder = load_results(results)
    assert [r.id for r in folder.runs][:4] == [CONCAT, "fusion-classifier/weighted/seed0", ATTENTION, FAILED]
    failed = folder.run(FAILED)
    assert failed is not None and failed.status == "failed"
    assert "mat1 and mat2 shapes cannot be multiplied" in (failed.error or "")
    assert folder.run(ATTENTION).status == "complete"
    assert len(folder.rows) == sum(1 for _ in (results / "results.jsonl").open())
    assert {a.kind for a in folder.artifacts} == {"caption_example", "retrieval_example", "generated_image",
                                                  "attention_map", "importance"}
    assert folder.problems == ()


def test_torn_final_line_is_skipped_and_reported_but_a_bad_middle_line_is_an_error(tmp_path: Path) -> None:
    root = _minimal(tmp_path, [ResultRow("task", "accuracy", 0.5, run="r1")])
    with (root / "results.jsonl").open("a") as fh:
        fh.write('{"schema": 1, "run": "r1", "axis": "task", "metr')
    folder = load_results(root)
    assert [r.value for r in folder.rows] == [0.5]
    assert any("torn final line" in p for p in folder.problems)

    text = (root / "results.jsonl").read_text()
    (root / "results.jsonl").write_text("not json\n" + text.split("\n")[0] + "\n")
    with pytest.raises(DataError, match=r"results\.jsonl: line 1 is not valid JSON"):
        load_results(root)


@pytest.mark.parametrize(("line", "message"), [
    ({"schema": 1, "run": "r", "axis": "task", "metric": "accuracy", "value": [1]}, "key 'value'"),
    ({"schema": 1, "run": "r", "axis": "", "metric": "accuracy", "value": 1}, "key 'axis'"),
    ({"schema": 9, "run": "r", "axis": "task", "metric": "accuracy", "value": 1}, "schema 9"),
    ({"schema": 1, "run": "r", "axis": "task", "metric": "a", "value": 1, "conditions": []}, "key 'conditions'"),
])
def test_malformed_rows_name_file_line_and_key(tmp_path: Path, line: dict, message: str) -> None:
    (tmp_path / "results.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_results(tmp_path)
    assert "results.jsonl: line 1" in str(err.value)


def test_missing_folder_and_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_results(tmp_path / "nope")
    with pytest.raises(DataError, match="no results.jsonl"):
        load_results(tmp_path)
    folder = load_results(_minimal(tmp_path, [ResultRow("task", "accuracy", 0.5, run="r1")]))
    assert [r.id for r in folder.runs] == ["r1"]
    assert any("manifest.json is missing" in p for p in folder.problems)


def test_artifact_paths_cannot_leave_the_results_folder(results: Path) -> None:
    folder = load_results(results)
    with pytest.raises(DataError, match="leaves the results folder"):
        folder.read_image("../secret.png")
    with pytest.raises(DataError, match="leaves the results folder"):
        folder.read_image("/etc/passwd")
    (results / "artifacts" / "fake.png").write_text("not an image")
    with pytest.raises(DataError, match="neither PNG nor JPEG"):
        folder.read_image("artifacts/fake.png")


def test_leaderboard_aggregation_rule() -> None:
    rows = [
        # training history: only the final epoch counts
        ResultRow("task", "accuracy", 0.2, run="a", conditions={"epoch": 1}),
        ResultRow("task", "accuracy", 0.8, run="a", conditions={"epoch": 2}),
        ResultRow("task", "accuracy", 0.7, run="b"),
        # sweeps are averaged and the column says over what
        *[ResultRow("robustness.adversarial", "robust_accuracy", v, run="a", conditions={"epsilon": e})
          for e, v in ((0.0, 0.9), (0.1, 0.5), (0.2, 0.1))],
        ResultRow("robustness.adversarial", "robust_accuracy", 0.6, run="b", conditions={"epsilon": 0.1}),
        # lower is better
        ResultRow("robustness.adversarial", "attack_success_rate", 0.4, run="a"),
        ResultRow("robustness.adversarial", "attack_success_rate", 0.3, run="b"),
        # explanations and training curves are not leaderboard columns
        ResultRow("interpretability.importance", "shapley", 0.3, run="a", conditions={"modality": "image"}),
        ResultRow("train", "loss", 0.1, run="a", conditions={"epoch": 2}),
        ResultRow("task", "error", None, run="c", extra={"traceback": "boom"}),
    ]
    board = build_leaderboard(rows, ["a", "b", "c"])
    assert [c.key for c in board.columns] == ["task/accuracy", "robustness.adversarial/robust_accuracy",
                                              "robustness.adversarial/attack_success_rate"]
    assert board.runs == ("a", "b", "c")
    assert board.value("a", "task/accuracy") == pytest.approx(0.8)
    assert board.value("a", "robustness.adversarial/robust_accuracy") == pytest.approx(0.5)
    assert board.column("robustness.adversarial/robust_accuracy").averaged_over == ("epsilon",)
    # Without per-sample scores nothing is tested, so nothing is marked best, and the note says why.
    assert all(not best for best in board.best.values())
    assert "no per-sample scores" in board.best_notes["task/accuracy"]
    assert board.interval("a", "task/accuracy") is None
    assert board.value("c", "task/accuracy") is None


def _bits(ones: int, n: int = 60, offset: int = 0) -> dict:
    return {PER_SAMPLE_KEY: encode_per_sample([1.0 if offset <= i < offset + ones else 0.0 for i in range(n)])}


def test_best_only_when_significant_else_tied() -> None:
    rows = [ResultRow("task", "accuracy", 50 / 60, run="a", extra=_bits(50)),
            ResultRow("task", "accuracy", 20 / 60, run="b", extra=_bits(20)),
            # a clear winner on a lower-is-better metric
            ResultRow("task", "error_rate", 10 / 60, run="a", extra=_bits(10)),
            ResultRow("task", "error_rate", 40 / 60, run="b", extra=_bits(40)),
            # 3 samples apart: not distinguishable (exact-enough sign-flip p = 0.25)
            ResultRow("zero-shot", "accuracy", 30 / 60, run="a", extra=_bits(30)),
            ResultRow("zero-shot", "accuracy", 33 / 60, run="b", extra=_bits(33))]
    board = build_leaderboard(rows, resamples=2000, seed=1)
    assert board.best["task/accuracy"] == {"a"} and not board.tied["task/accuracy"]
    assert board.best["task/error_rate"] == {"a"}
    assert not board.best["zero-shot/accuracy"] and board.tied["zero-shot/accuracy"] == {"a", "b"}
    assert "tied" in board.best_notes["zero-shot/accuracy"]
    iv = board.interval("a", "task/accuracy")
    assert iv.method == "bootstrap" and iv.n == 60 and iv.low < 50 / 60 < iv.high
    # Seeded: the same rows give the same intervals and marks.
    again = build_leaderboard(rows, resamples=2000, seed=1)
    assert again.interval("a", "task/accuracy") == iv and again.tied == board.tied
    doc = board.to_json()
    row_a = next(r for r in doc["rows"] if r["run"] == "a")
    assert row_a["intervals"]["task/accuracy"]["low"] == pytest.approx(iv.low)
    assert row_a["tied"] == ["zero-shot/accuracy"] and "task/accuracy" in row_a["best"]


def test_rows_over_different_samples_are_not_paired() -> None:
    rows = [ResultRow("task", "accuracy", 50 / 60, run="a", extra=_bits(50)),
            ResultRow("task", "accuracy", 20 / 40, run="b", extra=_bits(20, n=40))]
    board = build_leaderboard(rows)
    assert not board.best["task/accuracy"] and "other samples" in board.best_notes["task/accuracy"]
    assert board.interval("b", "task/accuracy").n == 40


def test_seed_groups_summarise_runs_over_seeds() -> None:
    rows = [ResultRow("task", "accuracy", v, run=f"clf/fusion=concat/seed={s}", extra=_bits(round(v * 60)))
            for s, v in enumerate((0.8, 0.85, 0.9))]
    board = build_leaderboard(rows)
    members, summaries = board.seed_groups["clf/fusion=concat"]
    assert len(members) == 3
    s = summaries["task/accuracy"]
    assert s.n == 3 and s.mean == pytest.approx(0.85) and s.std == pytest.approx(0.05)
    assert s.interval.low < 0.85 < s.interval.high


def test_direction_hint_from_producer_wins_over_name() -> None:
    assert higher_is_better("fid") is False and higher_is_better("cider") is True
    assert higher_is_better("recall@5") is True and higher_is_better("attack_success_rate") is False
    rows = [ResultRow("task", "fid", 10.0, run="a", extra={"higher_is_better": True}),
            ResultRow("task", "fid", 20.0, run="b", extra={"higher_is_better": True})]
    assert build_leaderboard(rows).column("task/fid").higher_is_better is True


def test_single_run_columns_have_no_best_and_ties_share_it() -> None:
    rows = [ResultRow("task", "bleu_4", 0.4, run="a"), ResultRow("task", "accuracy", 0.5, run="a"),
            ResultRow("task", "accuracy", 0.5, run="b")]
    board = build_leaderboard(rows)
    assert board.best["task/bleu_4"] == frozenset()
    assert "single run" in board.best_notes["task/bleu_4"]


def test_json_report_is_strict_versioned_and_complete(results: Path, tmp_path: Path) -> None:
    out = render(results, "json", tmp_path / "r.json", progress=None)
    doc = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert doc["schema"] == "polymodal-report" and doc["schema_version"] == 1
    assert len(doc["results"]) == len(load_results(results).rows)
    assert doc["manifest"]["suite"]["name"] == "quickstart"
    lb = {r["run"]: r for r in doc["leaderboard"]["rows"]}
    assert len(lb) == 7 and "task/accuracy" in lb[ATTENTION]["best"]
    assert "task/f1_macro" not in lb[ATTENTION]["best"]  # no per-sample scores: no claim of significance
    iv = lb[ATTENTION]["intervals"]["task/accuracy"]
    assert iv["low"] < lb[ATTENTION]["values"]["task/accuracy"] < iv["high"] and iv["n"] == 400
    acc_rows = [r for r in doc["results"] if r["run"] == ATTENTION and r["axis"] == "task" and r["metric"] == "accuracy"]
    assert lb[ATTENTION]["values"]["task/accuracy"] == pytest.approx(acc_rows[0]["value"])
    assert {r["id"]: r["status"] for r in doc["runs"]}[FAILED] == "failed"
    assert any(a["kind"] == "retrieval_example" for a in doc["artifacts"])


def test_nan_values_are_reported_not_hidden(tmp_path: Path) -> None:
    root = _minimal(tmp_path, [ResultRow("task", "accuracy", float("nan"), run="a"),
                               ResultRow("task", "accuracy", 0.5, run="b")])
    folder = load_results(root)
    assert any("NaN or infinite" in p for p in folder.problems)
    doc = json.loads(render(root, "json", tmp_path / "r.json", progress=None).read_text())
    values = {r["run"]: r["values"]["task/accuracy"] for r in doc["leaderboard"]["rows"]}
    assert values == {"a": "nan", "b": 0.5}
    md = render(root, "markdown", tmp_path / "r.md", progress=None).read_text()
    assert "| a | nan |" in md


def test_markdown_marks_best_per_column_and_lists_failures(results: Path, tmp_path: Path) -> None:
    md = render(results, "markdown", tmp_path / "r.md", progress=None).read_text()
    lines = md.splitlines()
    overview = next(i for i, line in enumerate(lines) if line.startswith("| run | task · accuracy ↑"))
    att = next(line for line in lines[overview:] if line.startswith(f"| {ATTENTION} |"))
    concat = next(line for line in lines[overview:] if line.startswith(f"| {CONCAT} |"))
    assert att.split("|")[2].strip().startswith("**0.9") and "★" in att.split("|")[2]
    assert "★" not in concat
    assert f"| {FAILED} ✗ failed |" in md
    assert "## Failed runs" in md and "mat1 and mat2" in md
    # lower-is-better column: the smallest attack success rate is the starred one
    adv_header = lines.index("### robustness.adversarial")
    adv = [line for line in lines[adv_header:adv_header + 8] if line.startswith("| fusion")]
    rates = {line.split("|")[1].strip(): line.split("|")[3] for line in adv}
    starred = [run for run, cell in rates.items() if "★" in cell]
    assert starred == [ATTENTION]
    assert "### retrieval" in md and "mean over direction" in md


def test_markdown_escapes_table_breaking_names(tmp_path: Path) -> None:
    root = _minimal(tmp_path, [ResultRow("task", "accuracy", 0.5, run="a|b"),
                               ResultRow("task", "accuracy", 0.6, run="c")])
    md = render(root, "markdown", tmp_path / "r.md", progress=None).read_text()
    assert "| a\\|b | 0.500 |" in md


def test_unknown_format_suggests_the_right_one(results: Path) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'html'"):
        render(results, "htm", progress=None)


def test_write_reports_writes_all_formats_with_progress(results: Path, capsys: pytest.CaptureFixture) -> None:
    paths = write_reports(results, ("json", "markdown"))
    assert [p.name for p in paths] == ["report.json", "report.md"]
    assert all(p.stat().st_size > 0 for p in paths)
    err = capsys.readouterr().err
    assert "polymodal report: rendering json report" in err and "wrote" in err


def test_cli_report_and_errors(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "summary.md"
    assert main(["report", str(results), "--format", "markdown", "--out", str(out)]) == 0
    assert out.read_text().startswith("# polymodal report: quickstart")
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(results), "--all", "--out", str(out)]) == 2


def test_cli_compare_reports_direction_aware_deltas(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = write_results_folder(tmp_path / "a", include_other_models=False)
    b = write_results_folder(tmp_path / "b", include_other_models=False, include_failed=False, quality_shift=0.05)
    assert main(["compare", str(a), str(b), "--json", "--resamples", "5000"]) == 0
    out = capsys.readouterr().out
    cmp = json.loads(out)
    acc = {r["run"]: r for r in cmp["rows"] if r["column"] == "task/accuracy"}
    assert set(acc) == {CONCAT, "fusion-classifier/weighted/seed0", ATTENTION}
    for r in acc.values():
        assert r["delta"] == pytest.approx(0.05) and r["verdict"] == "better"
        test = r["test"]  # 20 of 400 samples flipped, all the same way: p at the Monte Carlo floor
        assert test["n"] == 400 and test["p_value"] <= 3 / 5001
        assert test["p_adjusted"] >= test["p_value"] and test["interval"]["low"] > 0
    assert cmp["statistics"]["correction"] == "holm" and cmp["statistics"]["tested"] > 10
    # seeded: the same call prints the same numbers
    assert main(["compare", str(a), str(b), "--json", "--resamples", "5000"]) == 0
    assert capsys.readouterr().out == out
    # a 2-sample difference is reported as not significant, not as better
    c = write_results_folder(tmp_path / "c", include_other_models=False, include_failed=False, quality_shift=0.005)
    assert main(["compare", str(a), str(c), "--json"]) == 0
    small = [r for r in json.loads(capsys.readouterr().out)["rows"] if r["column"] == "task/accuracy"]
    assert small and all(r["verdict"] in ("not significant", "same") for r in small)
    assert any(r["verdict"] == "not significant" for r in small)
    asr = [r for r in cmp["rows"] if r["column"] == "robustness.adversarial/attack_success_rate"]
    assert all(r["verdict"] in ("same", "better", "worse") for r in asr)
    assert cmp["runs_only_in_a"] == [FAILED]
    # swapped, the same deltas are worse
    assert main(["compare", str(b), str(a)]) == 0
    text = capsys.readouterr().out
    task_lines = [line for line in text.splitlines() if " task/" in line]
    acc_lines = [line for line in task_lines if "task/accuracy" in line]
    assert len(task_lines) == 6 and len(acc_lines) == 3
    assert all("-0.0500" in line for line in task_lines)
    assert all(line.endswith(("▼ worse", "not significant")) for line in task_lines)
    assert "deltas tested on shared samples" in text


def test_plugin_modules_stay_light() -> None:
    code = ("import sys, polymodal_plugins.reporters, polymodal_plugins.commands.report, "
            "polymodal_plugins.commands.compare, polymodal.report, polymodal.leaderboard;"
            "heavy=[m for m in ('torch','matplotlib','numpy','PIL') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_entry_points_register_reporters_and_commands() -> None:
    from polymodal.plugins import build_plugin_manager

    plugins = build_plugin_manager()
    assert {"json", "markdown", "html"} <= {s.name for s in plugins.list("reporters")}
    assert {"report", "compare"} <= {s.name for s in plugins.list("commands")}
