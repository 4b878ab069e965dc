"""The built-in report sections: how the built-in axes' artifacts appear in the HTML and Markdown reports.

Registered through ``register_report_sections`` like a third party's (see
:mod:`polymodal.report_sections`); the reporters know no artifact kind.
Each HTML renderer gets the artifacts of its kind and the page (embedded
images, charts, the results folder, the run colours).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from polymodal.leaderboard import format_value
from polymodal.report import Artifact
from polymodal.report_sections import ReportSection
from polymodal_plugins.reporters import html_charts as charts


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _item_html(page: Any, item: Any, alt: str) -> str:
    if isinstance(item, str):
        return f'<div class="qtext">{esc(item)}</div>'
    if not isinstance(item, dict):
        return ""
    out = ""
    if item.get("image"):
        out += page.image(str(item["image"]), alt, "thumb")
    if item.get("text"):
        out += f'<div class="qtext">{esc(item["text"])}</div>'
    return out


def retrieval_html(artifacts: Sequence[Artifact], page: Any) -> str:
    cards = []
    for a in artifacts:
        d = a.data
        query = d.get("query", d.get("query_text") or d.get("query_image"))
        if isinstance(query, str) and query.lower().endswith((".png", ".jpg", ".jpeg")):
            query = {"image": query}
        items = d.get("results") or d.get("top_k") or d.get("items") or []
        if not isinstance(items, list):
            continue
        results = []
        for rank, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                continue
            hit = bool(item.get("hit"))
            score = item.get("score")
            score_text = f"{score:.3f}" if isinstance(score, (int, float)) else ""
            results.append(f'<li class="{"hit" if hit else "miss"}"><span class="rank">#{rank}</span>'
                           f'{_item_html(page, item, f"result {rank}")}<span class="score">{esc(score_text)}</span>'
                           f'<span class="mark">{"✓ hit" if hit else ""}</span></li>')
        cards.append(f'<div class="card"><div class="meta">{esc(a.run)} · {esc(d.get("direction", ""))}</div>'
                     f'<div class="query"><span class="label">query</span>{_item_html(page, query, "query")}</div>'
                     f'<ol class="topk">{"".join(results)}</ol></div>')
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


def captions_html(artifacts: Sequence[Artifact], page: Any) -> str:
    cards = []
    for a in artifacts:
        d = a.data
        refs = d.get("references") or []
        refs = refs if isinstance(refs, list) else [refs]
        scores = d.get("scores") if isinstance(d.get("scores"), dict) else {}
        score_html = "".join(f'<span class="pill">{esc(k)} {esc(format_value(v) if isinstance(v, (int, float)) else v)}'
                             f"</span>" for k, v in scores.items())
        cards.append(
            f'<div class="card caption">{page.image(d.get("image") or a.path, "captioned image", "thumb big")}'
            f'<div><div class="meta">{esc(a.run)}</div><div class="generated">“{esc(d.get("generated", ""))}”</div>'
            f'<div class="label">references</div><ul class="refs">{"".join(f"<li>{esc(r)}</li>" for r in refs)}</ul>'
            f"<div>{score_html}</div></div></div>")
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


def generated_html(artifacts: Sequence[Artifact], page: Any) -> str:
    tiles = []
    for a in artifacts:
        caption = a.data.get("caption") or a.data.get("prompt") or ""
        tiles.append(f'<figure class="tile">{page.image(a.path or a.data.get("image"), str(caption), "thumb big")}'
                     f'<figcaption>{esc(caption)}<br><span class="meta">{esc(a.run)}</span></figcaption></figure>')
    return f'<div class="tiles">{"".join(tiles)}</div>' if tiles else ""


def _tokens_html(tokens: list[Any], weights: list[Any]) -> str:
    nums = [float(w) if isinstance(w, (int, float)) and math.isfinite(w) else 0.0 for w in weights]
    top = max((abs(w) for w in nums), default=0.0) or 1.0
    spans = [f'<span class="tok" style="background:rgba(213,94,0,{abs(w) / top:.2f})" '
             f'title="{w:.3f}">{esc(t)}</span>' for t, w in zip(tokens, nums, strict=False)]
    return f'<div class="tokens">{" ".join(spans)}</div>'


def attention_html(artifacts: Sequence[Artifact], page: Any) -> str:
    tiles, token_rows = [], []
    for a in artifacts:
        d = a.data
        if a.path or d.get("image"):
            label = d.get("caption") or d.get("label") or ""
            tiles.append(f'<figure class="tile">{page.image(a.path or d.get("image"), "attention heatmap", "thumb big")}'
                         f'<figcaption>{esc(label)}<br><span class="meta">{esc(a.run)}</span></figcaption></figure>')
        tokens, weights = d.get("tokens"), d.get("weights")
        if isinstance(tokens, list) and isinstance(weights, list) and tokens:
            token_rows.append(f'<div class="card wide"><div class="meta">{esc(a.run)} · token attention</div>'
                              f"{_tokens_html(tokens, weights)}</div>")
    return (f'<div class="tiles">{"".join(tiles)}</div>' if tiles else "") + "".join(token_rows)


def importance_html(artifacts: Sequence[Artifact], page: Any) -> str:
    """The modality-importance chart: the axis's rows, plus runs that only saved an importance artifact."""
    values: dict[str, dict[str, dict[str, float]]] = {}
    for r in page.folder.rows_of("interpretability.importance"):
        modality = r.conditions.get("modality")
        if modality is not None and r.value is not None and math.isfinite(r.value):
            values.setdefault(r.metric, {}).setdefault(r.run, {})[str(modality)] = r.value
    for a in artifacts:  # runs that only saved an artifact
        method = str(a.data.get("method", "importance"))
        vals = a.data.get("values", {k: v for k, v in a.data.items() if k != "method"})
        if isinstance(vals, dict) and a.run not in values.get(method, {}):
            clean = {str(k): float(v) for k, v in vals.items() if isinstance(v, (int, float))}
            if clean:
                values.setdefault(method, {})[a.run] = clean
    page.step("chart: modality importance")
    return page.chart(charts.grouped_by_category(values, page.colours, "modality"), "modality importance")


# -- Markdown: short text versions (images as links) ------------------------------------------------------
def captions_markdown(artifacts: Sequence[Artifact], page: Any) -> str:
    lines = []
    for a in artifacts:
        refs = a.data.get("references") or []
        refs = refs if isinstance(refs, list) else [refs]
        image = page.image(a.data.get("image") or a.path, "captioned image")
        lines.append(f"- {image} **{_md(a.run)}**: “{_md(a.data.get('generated', ''))}” "
                     f"(references: {'; '.join(_md(r) for r in refs)})")
    return "\n".join(lines)


def retrieval_markdown(artifacts: Sequence[Artifact], page: Any) -> str:
    lines = []
    for a in artifacts:
        items = a.data.get("results") or a.data.get("top_k") or a.data.get("items") or []
        hits = ["✓" if isinstance(i, dict) and i.get("hit") else "·" for i in items if isinstance(i, dict)]
        lines.append(f"- **{_md(a.run)}** {_md(a.data.get('direction', ''))}: top-{len(hits)} {' '.join(hits)}")
    return "\n".join(lines)


def generated_markdown(artifacts: Sequence[Artifact], page: Any) -> str:
    caption = "caption"
    return "\n".join(f"- {page.image(a.path or a.data.get('image'), str(a.data.get(caption, '')))} "
                     f"**{_md(a.run)}**: {_md(a.data.get(caption) or a.data.get('prompt') or '')}" for a in artifacts)


def _pairs_html(artifacts: Sequence[Artifact], first: str, second: str) -> str:
    """Cards of two texts per artifact (question and reply, reference and transcript)."""
    cards = [f'<div class="card"><div class="meta">{esc(a.run)} · {esc(a.data.get("id", ""))}</div>'
             f'<div class="label">{esc(first)}</div><div class="qtext">{esc(a.data.get(first, ""))}</div>'
             f'<div class="label">{esc(second)}</div><div class="generated">{esc(a.data.get(second, ""))}</div></div>'
             for a in artifacts]
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


def _pairs_markdown(artifacts: Sequence[Artifact], first: str, second: str) -> str:
    return "\n".join(f"- **{_md(a.run)}** {_md(a.data.get('id', ''))}: {first} “{_md(a.data.get(first, ''))}” → "
                     f"{second} “{_md(a.data.get(second, ''))}”" for a in artifacts)


def answering() -> ReportSection:
    return ReportSection("answer_example", "Answer examples", lambda arts, page: _pairs_html(arts, "question", "reply"),
                         lambda arts, page: _pairs_markdown(arts, "question", "reply"))


def transcription() -> ReportSection:
    return ReportSection("transcript_example", "Transcription examples",
                         lambda arts, page: _pairs_html(arts, "reference", "transcript"),
                         lambda arts, page: _pairs_markdown(arts, "reference", "transcript"))


def retrieval() -> ReportSection:
    return ReportSection("retrieval_example", "Retrieval examples", retrieval_html, retrieval_markdown)


def captioning() -> ReportSection:
    return ReportSection("caption_example", "Captioning examples", captions_html, captions_markdown)


def generation() -> ReportSection:
    return ReportSection("generated_image", "Generated images", generated_html, generated_markdown)


def attention() -> ReportSection:
    return ReportSection("attention_map", "Attention maps", attention_html)


def importance() -> ReportSection:
    return ReportSection("importance", "Modality importance", importance_html)
