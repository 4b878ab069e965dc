"""The HTML report: self-contained, escaped, complete, and clean in a real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from needs import need
from reports_cdp import find_browser, open_page
from reports_fixture import PER_SAMPLE_METRICS, write_results_folder

from polymodal.report import load_results, render
from polymodal.results import JsonlStore

ATTENTION = "fusion-classifier/attention/seed0"
#: Charts the fixture must produce: overview, 3 noise metrics, 2 adversarial metrics, importance, training.
EXPECTED_CHARTS = 8


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = write_results_folder(tmp_path_factory.mktemp("results"))
    # A hostile run id and artifact text must come out escaped, never as markup.
    JsonlStore(root / "results.jsonl").append({"schema": 1, "run": "<script>alert(1)</script>", "axis": "task",
                                               "metric": "accuracy", "value": 0.5, "conditions": {}, "extra": {}})
    JsonlStore(root / "artifacts.jsonl").append({"run": "x", "axis": "task", "kind": "generated_image",
                                                 "path": "../../outside.png", "data": {"caption": "<b>bold</b>"}})
    return root, render(root, "html", progress=None)


def test_html_is_self_contained_and_escaped(report: tuple[Path, Path]) -> None:
    _, path = report
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,", "#")) for s in sources)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert "default-src 'none'" in page  # the CSP forbids any fetch even if a bug slipped one in


def chart_specs(page: str) -> list[dict]:
    """The JSON specs the report embeds beside its charts."""
    import json

    return [json.loads(m) for m in re.findall(r'<script type="application/json" class="chart-spec">(.*?)</script>',
                                               page, flags=re.S)]


def check_chart_semantics(specs: list[dict]) -> None:
    """The three chart defects of issue 22 stay fixed (shared by the static and the browser test)."""
    curves = [s for s in specs if s["kind"] == "curves"]
    assert curves, "no curve charts"
    for spec in curves:
        for panel in spec["panels"]:
            # no panel for a baseline alone: every panel draws curves over more than one x value
            assert all(len(series["points"]) > 1 for series in panel["series"]), (spec["title"], panel["title"])
            assert panel["title"] != "none"
            # one series per run and condition set: labels are unique, and no line mixes conditions
            labels = [series["label"] for series in panel["series"]]
            assert len(labels) == len(set(labels)), labels
            xs = [p[0] for series in panel["series"] for p in series["points"]]
            for series in panel["series"]:
                px = [p[0] for p in series["points"]]
                assert px == sorted(set(px)), f"{series['label']} zig-zags: {px}"
            assert xs
        assert all(p["xtick_overlaps"] == 0 for p in spec["panels"])
    overview = [s for s in specs if s["kind"] == "bars"]
    assert overview and overview[0]["panels"][0]["xtick_overlaps"] == 0
    assert len(overview[0]["panels"][0]["xtick_boxes"]) == len(overview[0]["panels"][0]["categories"])


def test_chart_specs_fix_the_three_defects(report: tuple[Path, Path]) -> None:
    _, path = report
    specs = chart_specs(path.read_text(encoding="utf-8"))
    check_chart_semantics(specs)
    noise = {s["title"]: s for s in specs if s["kind"] == "curves" and s["x"] == "severity"}
    acc = noise["accuracy vs corruption severity"]
    # the clean baseline became a reference level in every panel, for every run
    assert acc["baseline_panels"] == ["none"]
    assert all(len(p["references"]) == len(p["series"]) == 3 for p in acc["panels"])
    # the two retrieval directions are two series in the one embedding-noise panel, each with its clean level
    (panel,) = noise["recall@1 vs corruption severity"]["panels"]
    assert sorted(s["conditions"][0] for s in panel["series"]) == ["direction=image->text", "direction=text->image"]
    assert len(panel["references"]) == 2
    assert all(s["band"] for s in panel["series"])  # per-sample scores give bootstrap bands


def test_html_has_every_section_and_chart(report: tuple[Path, Path]) -> None:
    root, path = report
    page = path.read_text(encoding="utf-8")
    for section in ("leaderboard", "overview", "robustness", "adversarial", "retrieval", "captioning",
                    "generation", "attention", "importance", "training", "failures", "measurements", "manifest",
                    "notes"):
        assert f'<section id="{section}">' in page, section
    assert page.count('<img class="chart"') == EXPECTED_CHARTS
    assert "leaves the results folder" in page  # the refused artifact is reported, not silently dropped
    assert page.count('class="mark">✓ hit') == 2  # one hit per retrieval example
    runs = load_results(root).runs
    tbody = page.split('<table id="lb-table"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert tbody.count("<tr>") == len(runs)


@pytest.mark.e2e
def test_html_renders_in_headless_chromium(report: tuple[Path, Path]) -> None:
    need(find_browser(), "no Chromium binary on PATH (CI installs Debian's 'chromium')")
    root, path = report
    with open_page(path) as page:
        assert page.errors() == []
        foreign = [u for u in page.requests() if not u.startswith(("file:", "data:"))]
        assert foreign == []
        images = page.evaluate(
            "Array.from(document.images).map(i => ({cls: i.className, ok: i.complete && i.naturalWidth > 0,"
            " w: i.naturalWidth, h: i.naturalHeight}))")
        charts = [i for i in images if i["cls"] == "chart"]
        assert len(charts) == EXPECTED_CHARTS
        assert all(i["ok"] and i["h"] > 50 for i in images), images
        specs = page.evaluate("Array.from(document.querySelectorAll('script.chart-spec'))"
                              ".map(s => JSON.parse(s.textContent))")
        check_chart_semantics(specs)
        # every leaderboard cell backed by per-sample scores shows its interval, low <= value <= high
        cells = page.evaluate(
            "Array.from(document.querySelectorAll('#lb-table tbody td.num')).map(td => ({"
            "col: document.querySelectorAll('#lb-table th.sortable')[td.cellIndex].title.split(':')[0],"
            "run: td.parentElement.cells[0].dataset.v, v: td.dataset.v, ci: td.querySelector('.ci') && [+td.querySelector('.ci').dataset.low,"
            " +td.querySelector('.ci').dataset.high]}))")
        hostile = "<script>alert(1)</script>"  # the one row the fixture appends without per-sample scores
        per_sample = [c for c in cells
                      if c["v"] and c["run"] != hostile and c["col"].split("/")[-1] in PER_SAMPLE_METRICS]
        assert per_sample and all(c["ci"] for c in per_sample), [c for c in per_sample if not c["ci"]][:3]
        assert all(c["ci"][0] <= float(c["v"]) <= c["ci"][1] for c in per_sample)
        runs = [r.id for r in load_results(root).runs]
        rows = page.evaluate("Array.from(document.querySelectorAll('#lb-table tbody tr'))"
                             ".map(r => r.cells[0].dataset.v)")
        assert sorted(rows) == sorted(runs)
        # Sorting: the first click on a higher-is-better column puts the best run first and
        # runs without a value last; a second click reverses the measured runs.
        col = page.evaluate("Array.from(document.querySelectorAll('#lb-table th.sortable'))"
                            ".findIndex(th => th.title.startsWith('task/accuracy'))")
        order = page.evaluate(f"(document.querySelectorAll('#lb-table th.sortable')[{col}].click(),"
                              " Array.from(document.querySelectorAll('#lb-table tbody tr'))"
                              ".map(r => r.cells[0].dataset.v))")
        assert order[0] == ATTENTION and order[3] == "<script>alert(1)</script>"
        reverse = page.evaluate(f"(document.querySelectorAll('#lb-table th.sortable')[{col}].click(),"
                                " Array.from(document.querySelectorAll('#lb-table tbody tr'))"
                                ".map(r => r.cells[0].dataset.v))")
        assert reverse[:4] == list(reversed(order[:4]))
        assert page.errors() == []
        # The instrument works (it saw the page load itself), so "no foreign request" is not vacuous.
        assert any(u.startswith("file:") for u in page.requests())


def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        need(None, "no Chromium")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        need(None, "no Chromium")
    need("/usr/bin/chromium", "no Chromium")  # available: returns quietly
