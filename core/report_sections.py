"""Report sections: how one artifact kind is rendered in the HTML and Markdown reports.

An axis records qualitative examples with ``ctx.artifact(kind, data, image=...)``.
The reporters do not know any artifact kind: for every section registered
with ``register_report_sections`` they hand the section the artifacts of its
``artifact_kind`` (and the page, for images, charts and the results folder)
and put what it returns under its title. A plugin that records a new kind of
artifact registers a section for it and its examples appear in both reports;
artifacts of a kind no section renders stay in the JSON report and the
reports' notes say so.

Nothing here imports torch or matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from polymodal.errors import PluginError

if TYPE_CHECKING:
    from polymodal.plugins import Plugins
    from polymodal.report import Artifact, ResultsFolder


class SectionPage(Protocol):
    """What a renderer may use besides its artifacts (the HTML and Markdown reporters provide it)."""

    folder: ResultsFolder
    #: Run id -> colour, shared by every chart of the page (HTML only; empty in Markdown).
    colours: dict[str, str]

    def image(self, relative: str | None, alt: str, cls: str = "artifact") -> str:
        """An artifact image from the results folder: an embedded ``<img>`` (HTML) or a link (Markdown)."""
        ...


#: ``renderer(artifacts, page) -> text``: HTML or Markdown for the section body; "" shows nothing.
Renderer = Callable[[Sequence["Artifact"], Any], str]


@attrs.frozen
class ReportSection:
    """What a ``report_sections`` factory returns."""

    #: The ``kind`` of the artifacts (``ctx.artifact(kind, ...)``) this section renders.
    artifact_kind: str
    #: The section heading in both reports.
    title: str
    html: Renderer
    #: None: the section appears in the HTML report only.
    markdown: Renderer | None = None


def report_sections(plugins: Plugins) -> list[tuple[str, ReportSection]]:
    """Every registered section as ``(name, section)``, in registry order; a bad factory is a PluginError."""
    out = []
    for spec in plugins.list("report_sections"):
        section = plugins.build("report_sections", spec.name)
        if not isinstance(section, ReportSection):
            raise PluginError(f"report section {spec.name!r} from plugin {spec.plugin!r}: the factory must return a "
                              f"polymodal.report_sections.ReportSection, got {type(section).__name__}")
        out.append((spec.name, section))
    return out


def unrendered_kinds(folder: ResultsFolder, sections: Sequence[tuple[str, ReportSection]]) -> list[str]:
    """Notes for artifact kinds in ``folder`` that no registered section renders (kept in the JSON report)."""
    known = {s.artifact_kind for _n, s in sections}
    kinds = sorted({a.kind for a in folder.artifacts} - known)
    return [f"artifact kind {k!r} has no registered report section (polymodal list report-sections); "
            "kept in the JSON report only" for k in kinds]


__all__ = ["ReportSection", "Renderer", "SectionPage", "report_sections", "unrendered_kinds"]
