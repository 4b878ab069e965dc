"""Hostile inputs from issue 15: each is a one-line error naming the file, never a traceback or a hang."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polymodal.errors import ConfigError, DataError, PolymodalError
from polymodal.experiment import experiment_from_dict
from polymodal.report import load_results
from polymodal.results import JsonlStore, ResultRow
from polymodal.suite import MAX_INCLUDED_FILES, expand_suite, load_suite_dict

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 1000, text[:2000]
    return text


def test_including_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('include = ["/dev/zero"]\n')
    with pytest.raises(ConfigError) as err:
        load_suite_dict(tmp_path / "s.toml")
    assert "/dev/zero: not a regular file" in one_line(err.value)


def test_an_include_bomb_stops_at_the_limit_quickly(tmp_path: Path) -> None:
    for i in range(23):  # each file includes the next twice: 2^23 loads without a limit
        (tmp_path / f"f{i}.toml").write_text(f'include = ["f{i + 1}.toml", "f{i + 1}.toml"]\n' if i < 22 else "x = 1\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_suite_dict(tmp_path / "f0.toml")
    assert time.perf_counter() - start < 5
    text = one_line(err.value)
    assert "f0.toml" in text and ("nested deeper" in text or f"more than {MAX_INCLUDED_FILES}" in text)


def test_huge_numbers_in_results_are_named_errors(tmp_path: Path) -> None:
    row = {"schema": 1, "run": "r", "axis": "a", "metric": "m", "conditions": {}, "extra": {}}
    for bad in ("1" + "0" * 400, "7" * 5000):
        (tmp_path / "results.jsonl").write_text(json.dumps(row)[:-1] + f', "value": {bad}}}\n' + json.dumps(
            {**row, "value": 1.0}) + "\n")
        with pytest.raises(DataError) as err:
            load_results(tmp_path)
        assert "results.jsonl: line 1" in one_line(err.value)
    (tmp_path / "results.jsonl").write_text(json.dumps({**row, "value": 1.0, "conditions": {"image_id": 1}})[:-2]
                                            .replace('"image_id": 1', '"image_id": ' + "9" * 5000) + "}}\n"
                                            + json.dumps({**row, "value": 1.0}) + "\n")
    with pytest.raises(DataError) as err:
        load_results(tmp_path)
    assert "5000 digits" in one_line(err.value)


def test_a_lone_surrogate_is_stored_and_read_back(tmp_path: Path) -> None:
    store = JsonlStore(tmp_path / "results.jsonl")
    row = ResultRow("task", "cider", 0.5, run="r", extra={"caption": "a \ud800 b"})
    store.append(row.to_json())
    (back,) = list(store.read())
    assert back["extra"]["caption"] == "a \ud800 b" and store.torn_lines == 0


def test_a_pickle_as_fid_extractor_is_refused(tmp_path: Path) -> None:
    from polymodal_plugins.metrics.feature_extractor import build_feature_extractor

    path = tmp_path / "inception.pt"
    path.write_bytes(pickle.dumps({"weights": Path("x")}))  # a global weights_only refuses
    with pytest.raises(DataError) as err:
        build_feature_extractor(str(path))
    text = one_line(err.value)
    assert "inception.pt: " in text and "torch loads safely" in text


def test_millions_of_unknown_keys_give_a_short_error() -> None:
    data = {f"k{i}": 1 for i in range(1_000_000)}
    data["runs"] = {"x": {"model": {"name": "m"}}}
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        expand_suite(data, "s.toml")
    text = str(err.value)
    assert len(text) < 10_000 and "1000000 unknown keys, e.g. 'k0'" in text
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("lr", [math.nan, math.inf, -1.0])
def test_a_learning_rate_that_is_not_a_finite_positive_number_is_refused(lr: float) -> None:
    with pytest.raises(ConfigError, match="lr must be a finite number > 0"):
        experiment_from_dict({"data": {"dataset": "shapes"}, "model": {"name": "fusion-classifier"},
                              "train": {"optimizer": {"lr": lr}}}, "exp.toml")


# -- fuzzing the results readers -----------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(min_value=-(10 ** 400), max_value=10 ** 400), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                              max_size=4), max_leaves=20)


def _line(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", errors="backslashreplace") + b"\n"


@FUZZ
@given(value=values, conditions=values, extra=values, depth=st.integers(0, 3000), digits=st.integers(0, 6000))
def test_fuzzed_result_rows_are_read_or_refused_with_a_named_error(tmp_path_factory: pytest.TempPathFactory,
                                                                   value: object, conditions: object, extra: object,
                                                                   depth: int, digits: int) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    row = {"schema": 1, "run": "r", "axis": "a", "metric": "m", "value": value, "conditions": conditions,
           "extra": extra}
    nested = b'{"schema": 1, "run": "r", "axis": "a", "metric": "m", "value": 1, "extra": ' + b"[" * depth
    # Huge integers are written as text: hypothesis itself cannot print one over Python's 4300-digit limit.
    huge = b'{"schema": 1, "run": "r", "axis": "a", "metric": "m", "value": 1, "extra": {"id": 9' + b"9" * digits
    (folder / "results.jsonl").write_bytes(_line(row) + (nested + b"\n" if depth else b"")
                                           + (huge + b"}}\n" if digits else b""))
    try:
        load_results(folder)
    except PolymodalError as exc:
        one_line(exc)
    for record in JsonlStore(folder / "results.jsonl").read():  # the resume reader: skips what it cannot read
        try:
            ResultRow.from_json(record)
        except PolymodalError as exc:
            one_line(exc)


def _peak_rss_kib(args: list[str]) -> tuple[int, subprocess.CompletedProcess]:
    """Peak resident memory of ``polymodal ARGS`` run in its own process (measured by a parent that runs nothing else)."""
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run([sys.executable, '-m', 'polymodal', *sys.argv[1:]], capture_output=True, text=True)\n"
             "sys.stderr.write(p.stderr)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(p.returncode)\n")
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300)
    return int(proc.stdout.strip().splitlines()[-1]), proc


def test_a_ten_million_token_caption_in_score_captions_stays_under_100_mb(tmp_path: Path) -> None:
    """docs/SECURITY.md: a 10-million-token caption costs < 100 MB (the issue measured 2.4 GB on this path)."""
    (tmp_path / "refs.json").write_text(json.dumps({"annotations": [{"image_id": 1, "caption": "a red square"}]}))
    (tmp_path / "small.json").write_text(json.dumps([{"image_id": 1, "caption": "a red square"}]))
    (tmp_path / "huge.json").write_text(json.dumps([{"image_id": 1, "caption": "red " * 10_000_000}]))
    base, ok = _peak_rss_kib(["score", "captions", "--references", str(tmp_path / "refs.json"),
                              "--predictions", str(tmp_path / "small.json")])
    assert ok.returncode == 0, ok.stderr
    peak, proc = _peak_rss_kib(["score", "captions", "--references", str(tmp_path / "refs.json"),
                                "--predictions", str(tmp_path / "huge.json")])
    assert proc.returncode == 2 and "caption of 40000000 characters" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert (peak - base) / 1024 < 100, f"{(peak - base) / 1024:.0f} MB above a one-caption run"


def test_a_lone_surrogate_and_a_huge_image_id_in_score_captions(tmp_path: Path) -> None:
    from polymodal_plugins.metrics.score_inputs import read_caption_files

    (tmp_path / "refs.json").write_text(json.dumps({"annotations": [{"image_id": 1, "caption": "a red square"}]}))
    (tmp_path / "preds.json").write_text(json.dumps([{"image_id": 1, "caption": "a \ud800 square"}]))
    _ids, cands, _refs = read_caption_files(tmp_path / "refs.json", tmp_path / "preds.json")
    assert cands == ["a ? square"]
    (tmp_path / "preds.json").write_text('[{"image_id": ' + "9" * 5000 + ', "caption": "x"}]')
    with pytest.raises(DataError) as err:
        read_caption_files(tmp_path / "refs.json", tmp_path / "preds.json")
    assert "preds.json: invalid JSON: an integer of 5000 digits" in one_line(err.value)
