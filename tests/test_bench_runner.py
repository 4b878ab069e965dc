"""The benchmark runner collects each benchmark's JSON rows and reports failures (no benchmark is run here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

RUN_ALL = Path(__file__).parent / "benchmarks" / "run_all.py"


@pytest.fixture()
def run_all(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_run_all", RUN_ALL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = {"benchmark": "fake", "ours": 2.0, "alternative": 10.0, "unit": "s", "alternative_name": "ref",
           "ratio": 5.0, "ratio_means": "speed-up", "max_abs_diff": 0.0, "goal": ">= 5x", "met": True}
    (tmp_path / "good.py").write_text(
        f"import sys\nprint('progress', file=sys.stderr)\nprint('a table line')\nprint({json.dumps(json.dumps(row))})\n")
    (tmp_path / "crash.py").write_text(f"print({json.dumps(json.dumps(row))})\nraise SystemExit(3)\n")
    (tmp_path / "silent.py").write_text("print('no json here')\n")
    monkeypatch.setattr(module, "HERE", tmp_path)
    monkeypatch.setattr(module, "BENCHMARKS", {
        "good": ("good.py", ["--full"], ["--quick"]),
        "crash": ("crash.py", [], []),
        "silent": ("silent.py", [], []),
    })
    return module


def test_rows_are_the_json_lines_of_stdout(run_all):
    rows, seconds, error = run_all.run_one("good", quick=True, timeout=60)
    assert error is None and seconds > 0
    assert rows == [{**rows[0], "suite": "good"}] and rows[0]["ratio"] == 5.0


def test_nonzero_exit_and_missing_rows_are_failures(run_all):
    assert run_all.run_one("crash", quick=False, timeout=60)[2] == "exit status 3"
    assert run_all.run_one("silent", quick=False, timeout=60)[2] == "printed no JSON row"


def test_main_writes_json_and_markdown_and_fails_when_a_benchmark_fails(run_all, tmp_path, capsys):
    out_json, out_md = tmp_path / "t.json", tmp_path / "t.md"
    code = run_all.main(["--only", "good", "crash", "--json", str(out_json), "--markdown", str(out_md)])
    assert code == 1
    data = json.loads(out_json.read_text())
    assert [r["suite"] for r in data["rows"]] == ["good", "crash"]
    assert data["failures"] == [{"benchmark": "crash", "error": "exit status 3"}]
    assert len(data["machine"]["load_average"]) == 3
    md = out_md.read_text().splitlines()
    assert md[2] == "| benchmark | ours | alternative | ratio | max \\|diff\\| | goal | met? |"
    assert "| fake | 2 s | 10 s (ref) | 5 (speed-up) | 0.0e+00 | >= 5x | yes |" in md
    assert "FAILED crash: exit status 3" in capsys.readouterr().out
