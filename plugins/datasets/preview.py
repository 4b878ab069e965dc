"""``polymodal data preview``: a small, self-contained HTML page of samples, to look at the data.

Each field is shown the way its modality says its raw values preview (the
``preview`` trait of :class:`~polymodal.traits.ModalityTraits`, else a
``pictorial`` modality's values are pictures): ``image`` as an inline PNG
(PIL image or ``[H, W(, C)]`` array), ``audio`` as a player with an inline
WAV (``samples`` and ``sample_rate``, e.g. :class:`~polymodal.data.AudioClip`),
``frames`` as a strip of frames (a list of pictures or an ``[N, H, W(, C)]``
array), anything else as text. The choice reads the modality's declared
facts, never the field's name or the value's Python type, so a third-party
modality previews however it declares. A value that does not have the
declared form is shown as a one-line error naming the field. Everything is
embedded (base64), so the page can be mailed or archived.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from polymodal.traits import UNKNOWN, ModalityTraits

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


def _frames(value: Any) -> dict[str, Any]:
    frames = list(value)
    step = max(1, len(frames) // MAX_FRAMES)
    return {"kind": "frames", "data": [_png(f) for f in frames[::step][:MAX_FRAMES]], "alt": f"{len(frames)} frames"}


def _image(value: Any) -> dict[str, Any]:
    import numpy as np

    alt = f"{value.width}x{value.height}" if hasattr(value, "width") else "x".join(map(str, np.shape(value)))
    return {"kind": "image", "data": _png(value), "alt": alt}


def _audio(value: Any) -> dict[str, Any]:
    import numpy as np

    samples, rate = np.asarray(value.samples), int(value.sample_rate)
    return {"kind": "audio", "data": _wav(samples, rate), "alt": f"{samples.shape[-1] / rate:.2f} s at {rate} Hz"}


def preview_kind(traits: ModalityTraits) -> str:
    """How raw values of a modality with ``traits`` preview: its declared ``preview``, else from ``pictorial``."""
    return traits.preview or ("image" if traits.pictorial else "text")


#: The renderers a modality's ``preview`` trait may name.
RENDERERS = {"image": _image, "frames": _frames, "audio": _audio,
             "text": lambda v: {"kind": "text", "alt": str(v)[:500]}}


def render_value(value: Any, traits: ModalityTraits = UNKNOWN, field: str = "?") -> dict[str, Any]:
    """One cell: ``kind`` (image, audio, frames, text, error) and its embedded ``data`` / caption ``alt``.

    ``traits``: the field's modality's declared traits, which choose the rendering (module docs).
    """
    if value is None:
        return {"kind": "text", "alt": "(missing)"}
    kind = preview_kind(traits)
    render = RENDERERS.get(kind)
    if render is None:
        return {"kind": "error", "alt": f"field {field!r}: its modality declares preview {kind!r}; the preview "
                                        f"shows {', '.join(RENDERERS)}"}
    try:
        return render(value)
    except (TypeError, ValueError, AttributeError, OSError) as exc:
        return {"kind": "error", "alt": f"field {field!r}: its modality previews as {kind!r}, but the value "
                                        f"({type(value).__name__}) cannot be shown so: {exc}"}


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
                  title: str = "polymodal data preview", class_names: dict[str, list[str]] | None = None,
                  traits: Mapping[str, ModalityTraits] | None = None) -> Path:
    """Render the first ``samples`` of ``dataset`` into ``out`` (an HTML file); returns its path.

    ``traits``: each field's modality traits (``polymodal data preview`` passes those of the configured
    modalities); default: those of the modalities the dataset's ``fields`` name, built with defaults.
    """
    from polymodal.errors import PolymodalError

    fields = list(getattr(dataset, "fields", {}) or {})
    if traits is None:
        from polymodal.data import build_modalities
        from polymodal.traits import traits_of

        traits = {f: traits_of(m) for f, m in build_modalities(dict(dataset.fields)).items()}
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
        rows.append({"id": item.get("id", i), "cells": [render_value(item.get(f), traits.get(f, UNKNOWN), f) for f in fields], "targets": values})
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PAGE.render(title=title, split=split, total=len(dataset), fields=fields, targets=targets,
                                 samples=rows), encoding="utf-8")
    return path
