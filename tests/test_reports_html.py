"""The HTML report: self-contained, escaped, complete, and clean in a real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from needs import need
from reports_cdp import find_browser, open_page
from reports_fixture import write_results_folder

from polymodal.report import load_results, render
from polymodal.results import JsonlStore

ATTENTION = "fusion-classifier/attention/seed0"
#: Charts the fixture must produce: overview, 2 noise metrics, 2 adversarial metrics, importance, training.
EXPECTED_CHARTS = 7


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
