"""Reading ``{"id", "text"}`` JSONL transcript files for ``polymodal score wer|cer``.

Torch- and numpy-free, like the error-rate kernel. Every doubtful input (bad
JSON, a missing or duplicate id, a prediction for an unknown id, a missing
prediction) is a :class:`~polymodal.errors.DataError` naming the file and line,
because a WER computed over the wrong pairs looks just as plausible as a right one.
"""

from __future__ import annotations

import json
from pathlib import Path

from polymodal.errors import DataError


def read_transcripts(path: str | Path) -> dict[str | int, str]:
    """One JSONL file -> ``{id: text}`` in file order."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read as UTF-8 text: {exc}") from None
    out: dict[str | int, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}: line {n}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise DataError(f"{p}: line {n}: invalid JSON: nested too deeply") from None
        if not isinstance(item, dict) or "id" not in item or "text" not in item:
            raise DataError(f"{p}: line {n}: expected an object with 'id' and 'text'")
        key, text = item["id"], item["text"]
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise DataError(f"{p}: line {n}: 'id' must be a string or an integer, got {key!r}")
        if not isinstance(text, str):
            raise DataError(f"{p}: line {n}: 'text' must be a string, got {type(text).__name__}")
        if key in out:
            raise DataError(f"{p}: line {n}: duplicate id {key!r}")
        out[key] = text
    if not out:
        raise DataError(f"{p}: no transcripts (expected JSONL lines of {{\"id\": ..., \"text\": ...}})")
    return out


def read_transcript_pairs(references: str | Path, predictions: str | Path) -> tuple[list, list[str], list[str]]:
    """Both files -> (ids in reference order, reference texts, prediction texts), matched by id."""
    refs, preds = read_transcripts(references), read_transcripts(predictions)
    unknown = [k for k in preds if k not in refs]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise DataError(f"{predictions}: id {unknown[0]!r}{more} has no reference in {references}")
    missing = [k for k in refs if k not in preds]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{predictions}: no prediction for id {missing[0]!r}{more} of {references}")
    ids = list(refs)
    return ids, [refs[k] for k in ids], [preds[k] for k in ids]
