"""Report sections are a registered kind: a plugin's artifact kind appears in the HTML and Markdown reports."""

from __future__ import annotations

import json
from html import escape

import pytest
from reports_fixture import write_results_folder

from polymodal import component
from polymodal.cli import main
from polymodal.errors import PluginError
from polymodal.report import load_results
from polymodal.report_sections import ReportSection
from polymodal_plugins.reporters.html import render_html
from polymodal_plugins.reporters.markdown import render_markdown


def _depth_histogram() -> ReportSection:
    def html(artifacts, page) -> str:
        return "".join(f'<p class="depth-hist">{a.run}: {sum(a.data["counts"])} pixels</p>' for a in artifacts)

    def markdown(artifacts, page) -> str:
        return "\n".join(f"- {a.run}: {a.data['counts']}" for a in artifacts)

    return ReportSection("depth_histogram", "Depth histograms", html=html, markdown=markdown)


@pytest.fixture
def folder(tmp_path):
    root = write_results_folder(tmp_path / "results")
    with (root / "artifacts.jsonl").open("a") as f:
        f.write(json.dumps({"run": "depth/seed0", "axis": "depth-range", "kind": "depth_histogram",
                            "data": {"counts": [3, 4, 5]}}) + "\n")
    return root


def test_an_unrendered_artifact_kind_is_noted_not_lost(folder) -> None:
    html, md = render_html(load_results(folder)), render_markdown(load_results(folder))
    note = "artifact kind 'depth_histogram' has no registered report section"
    assert escape(note) in html and note in md
    assert "Retrieval examples" in html and "Captioning examples" in html  # built-ins, through the registry


def test_a_plugins_section_renders_its_artifact_kind_in_both_reports(folder, polymodal_plugin) -> None:
    section = component("report_sections", "depth-histogram", _depth_histogram,
                        description="artifact kind 'depth_histogram': pixel counts per depth bin.")
    with polymodal_plugin(section, name="depth-sections"):
        html, md = render_html(load_results(folder)), render_markdown(load_results(folder))
    assert "Depth histograms" in html and '<p class="depth-hist">depth/seed0: 12 pixels</p>' in html
    assert "## Depth histograms" in md and "- depth/seed0: [3, 4, 5]" in md
    assert "no registered report section" not in html + md
    assert "## Captioning examples" in md  # a built-in section's Markdown renderer


def test_list_shows_the_kind_and_a_bad_factory_is_named(capsys, polymodal_plugin, folder) -> None:
    assert main(["list", "report-sections"]) == 0
    out = capsys.readouterr().out
    assert "retrieval" in out and "artifact kind 'caption_example'" in out
    bad = component("report_sections", "broken", lambda: "not a section")
    with polymodal_plugin(bad, name="bad-sections"), pytest.raises(PluginError, match="report section 'broken'.*"
                                                                                      "ReportSection"):
        render_html(load_results(folder))
