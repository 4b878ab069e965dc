"""``polymodal data preview``: a small, self-contained HTML page of samples, to look at the data.

Each sample's fields are shown as what their raw values are: a picture
(PIL image or ``[H, W, C]`` array) as an inline PNG, audio (an
:class:`~polymodal.data.AudioClip`) as a player with an inline WAV, a clip
(a list of frames or an ``[N, H, W, C]`` array) as a strip of frames, text
as text. The choice is by the value's type, never by a field's name, so a
third-party modality's values render whenever they are one of these.
Everything is embedded (base64), so the page can be mailed or archived.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import jinja2

#: Longest side of a thumbnail, and frames shown per clip.
THUMB = 160
MAX_FRAMES = 8

_PAGE = jinja2.Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif;margin:1em} table{border-collapse:collapse} td,th{border:1px solid #ccc;
padding:4px;vertical-align:top} .frames img{margin-right:2px} .err{color:#b00}</style></head>
<body><h1>{{ title }}</h1>
<p>{{ samples|length }} sample(s) of split <b>{{ split }}</b> ({{ total }} in all).</p>
<table><tr><th>id</th>{% for f in fields %}<th>{{ f }}</th>{% endfor %}{% for t in targets %}<th>{{ t }}</th>{% endfor %}</tr>
{% for s in samples %}<tr><td>{{ s.id }}</td>
{% for cell in s.cells %}<td>{% if cell.kind == "image" %}<img alt="{{ cell.alt }}" src="data:image/png;base64,{{ cell.data }}">
{% elif cell.kind == "audio" %}<audio controls src="data:audio/wav;base64,{{ cell.data }}"></audio><br>{{ cell.alt }}
{% elif cell.kind == "frames" %}<span class="frames">{% for fr in cell.data %}<img alt="frame" src="data:image/png;base64,{{ fr }}">{% endfor %}</span><br>{{ cell.alt }}
{% elif cell.kind == "error" %}<span class="err">{{ cell.alt }}</span>
{% else %}{{ cell.alt }}{% endif %}</td>{% endfor %}
{% for v in s.targets %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table></body></html>
""", autoescape=True)


def _png(image: Any) -> str:
    from PIL import Image

    if not isinstance(image, Image.Image):
        import numpy as np

        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255 if arr.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
        image = Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[-1] == 1 else arr)
    image = image.convert("RGB")
    image.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _wav(samples: Any, rate: int) -> str:
    import numpy as np
    import soundfile

    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr.T  # [channels, length] -> soundfile's [length, channels]
    buf = io.BytesIO()
    soundfile.write(buf, arr, int(rate), format="WAV")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_value(value: Any) -> dict[str, Any]:
    """One cell: ``kind`` (image, audio, frames, text, error) and its embedded ``data`` / caption ``alt``."""
    import numpy as np
    from PIL import Image

    from polymodal.data import AudioClip

    if value is None:
        return {"kind": "text", "alt": "(missing)"}
    if isinstance(value, AudioClip):
        seconds = value.samples.shape[-1] / value.sample_rate
        return {"kind": "audio", "data": _wav(value.samples, value.sample_rate),
                "alt": f"{seconds:.2f} s at {value.sample_rate} Hz"}
    if isinstance(value, Image.Image):
        return {"kind": "image", "data": _png(value), "alt": f"{value.width}x{value.height}"}
    if isinstance(value, list | tuple) and value and all(isinstance(f, Image.Image | np.ndarray) for f in value):
        step = max(1, len(value) // MAX_FRAMES)
        return {"kind": "frames", "data": [_png(f) for f in list(value)[::step][:MAX_FRAMES]],
                "alt": f"{len(value)} frames"}
    if isinstance(value, np.ndarray) and value.ndim == 4:
        step = max(1, len(value) // MAX_FRAMES)
        return {"kind": "frames", "data": [_png(f) for f in value[::step][:MAX_FRAMES]], "alt": f"{len(value)} frames"}
    if isinstance(value, np.ndarray) and value.ndim in (2, 3):
        return {"kind": "image", "data": _png(value), "alt": "x".join(str(s) for s in value.shape)}
    return {"kind": "text", "alt": str(value)[:500]}


def _items(dataset: Any, n: int) -> Any:
    """``(i, sample or the error loading it)`` for the first ``n`` samples, by index or from a stream."""
    from polymodal.data import is_streamed
    from polymodal.errors import PolymodalError

    if not is_streamed(dataset):
        for i in range(n):
            try:
                yield i, dataset[i]
            except PolymodalError as exc:
                yield i, exc
        return
    start = 0
    while start < n:
        try:
            for i, item in enumerate(dataset.iter_indices(range(start, n)), start):
                start = i + 1
                yield i, item
            return
        except PolymodalError as exc:  # a stream that raised is spent: go on after the failing sample
            yield start, exc
            start += 1


def write_preview(dataset: Any, out: str | Path, *, split: str = "train", samples: int = 16,
                  title: str = "polymodal data preview", class_names: dict[str, list[str]] | None = None) -> Path:
    """Render the first ``samples`` of ``dataset`` into ``out`` (an HTML file); returns its path."""
    from polymodal.errors import PolymodalError

    fields = list(getattr(dataset, "fields", {}) or {})
    targets = list(getattr(dataset, "targets", []) or [])
    names = class_names if class_names is not None else dict(getattr(dataset, "class_names", {}) or {})
    rows = []
    for i, item in _items(dataset, min(samples, len(dataset))):
        if isinstance(item, PolymodalError):
            exc = item
            rows.append({"id": f"#{i}", "cells": [{"kind": "error", "alt": str(exc)}] +
                         [{"kind": "text", "alt": ""}] * (len(fields) - 1), "targets": [""] * len(targets)})
            continue
        values = []
        for t in targets:
            v = item.get(t)
            labels = names.get(t)
            values.append(labels[v] if labels and isinstance(v, int) and 0 <= v < len(labels) else v)
        rows.append({"id": item.get("id", i), "cells": [render_value(item.get(f)) for f in fields], "targets": values})
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PAGE.render(title=title, split=split, total=len(dataset), fields=fields, targets=targets,
                                 samples=rows), encoding="utf-8")
    return path
