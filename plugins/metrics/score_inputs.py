"""Readers for the files ``polymodal score`` takes, with errors that name file and entry.

A score is only worth reporting if its inputs were what the user meant, so
every reader refuses anything doubtful (bad JSON, missing or duplicate ids,
predictions for unknown images, missing predictions, wrong shapes, NaN)
with a :class:`~polymodal.errors.DataError` naming the file and the entry.
Arrays are read with ``allow_pickle=False``: nothing in them is executed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import DataError

#: A caption longer than this is refused before any tokenising: coco-caption's tokeniser and the n-gram
#: counts take memory in proportion to it (a 10-million-token caption took 2.4 GB).
MAX_CAPTION_CHARS = 100_000
#: Integers in a JSON input longer than this are refused (Python itself stops at 4300 digits, with a ValueError).
MAX_INT_DIGITS = 400


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS} are read)")
    return int(text)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as UTF-8 text: {exc}") from None
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # a hostile integer
        raise DataError(f"{path}: invalid JSON: {exc}") from None
    except RecursionError:  # the json module recurses per nesting level
        raise DataError(f"{path}: invalid JSON: arrays or objects nested too deeply") from None


def _entry(path: Path, where: str, item: Any) -> tuple[Any, str]:
    if not isinstance(item, dict):
        raise DataError(f"{path}: {where}: expected an object with 'image_id' and 'caption', got {type(item).__name__}")
    for key in ("image_id", "caption"):
        if key not in item:
            raise DataError(f"{path}: {where}: missing {key!r}")
    image_id, caption = item["image_id"], item["caption"]
    if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
        raise DataError(f"{path}: {where}: 'image_id' must be an integer or string, got {image_id!r}")
    if not isinstance(caption, str):
        raise DataError(f"{path}: {where}: 'caption' must be a string, got {type(caption).__name__}")
    if len(caption) > MAX_CAPTION_CHARS:
        raise DataError(f"{path}: {where}: caption of {len(caption)} characters; at most {MAX_CAPTION_CHARS} are scored")
    # A lone surrogate (valid in JSON escapes, not in UTF-8) would fail later in the tokeniser or the output.
    caption = caption.encode("utf-8", errors="replace").decode("utf-8")
    return image_id, caption


def read_caption_files(references: str | Path, predictions: str | Path) -> tuple[list, list[str], list[list[str]]]:
    """COCO annotations + COCO results -> (image ids, candidates, references), aligned."""
    ref_path, pred_path = Path(references), Path(predictions)
    ann = _read_json(ref_path)
    if not isinstance(ann, dict) or not isinstance(ann.get("annotations"), list):
        raise DataError(f"{ref_path}: expected COCO annotation format, an object with an 'annotations' list")
    refs: dict[Any, list[str]] = {}
    for i, item in enumerate(ann["annotations"]):
        image_id, caption = _entry(ref_path, f"annotations[{i}]", item)
        refs.setdefault(image_id, []).append(caption)
    if not refs:
        raise DataError(f"{ref_path}: 'annotations' is empty")
    res = _read_json(pred_path)
    if not isinstance(res, list):
        raise DataError(f"{pred_path}: expected COCO results format, a list of {{'image_id', 'caption'}} objects")
    preds: dict[Any, str] = {}
    for i, item in enumerate(res):
        image_id, caption = _entry(pred_path, f"entry [{i}]", item)
        if image_id not in refs:
            raise DataError(f"{pred_path}: entry [{i}]: image_id {image_id!r} has no reference captions in {ref_path}")
        if image_id in preds:
            raise DataError(f"{pred_path}: entry [{i}]: a second prediction for image_id {image_id!r}")
        preds[image_id] = caption
    missing = [k for k in refs if k not in preds]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{pred_path}: no prediction for image_id {missing[0]!r}{more} found in {ref_path}")
    ids = list(refs)
    return ids, [preds[k] for k in ids], [refs[k] for k in ids]


def _check_npy_size(p: Path, what: str) -> None:
    """Refuse a ``.npy`` whose header declares more data than the file holds.

    ``np.load`` allocates the declared shape before reading, so a 100-byte
    file claiming a terabyte array would otherwise end in a MemoryError (or
    the OOM killer) instead of an error naming the file.
    """
    try:
        with p.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return  # np.load reports unsupported versions itself
            data_start = fh.tell()
    except (OSError, ValueError, EOFError, SyntaxError):
        return  # not a readable .npy header: np.load below gives the precise error
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    available = p.stat().st_size - data_start
    if declared > available:
        raise DataError(f"{p}: .npy header ({what}) declares shape {shape} of {dtype} ({declared} bytes) "
                        f"but the file holds only {available} bytes of data (truncated or hostile file)")


def read_array(path: str | Path, what: str, ndim: int, integer: bool = False) -> np.ndarray:
    """A ``.npy`` array with the expected rank, finite (or integer) values."""
    p = Path(path)
    _check_npy_size(p, what)
    try:
        arr = np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{p}: not a readable .npy array ({what}): {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{p}: expected a single .npy array ({what}), not an archive")
    if arr.ndim != ndim:
        raise DataError(f"{p}: {what} must have {ndim} dimension(s), got shape {arr.shape}")
    if integer:
        if not np.issubdtype(arr.dtype, np.integer):
            raise DataError(f"{p}: {what} must hold integers, got dtype {arr.dtype}")
        return arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{p}: {what} must be numeric, got dtype {arr.dtype}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise DataError(f"{p}: {what} holds NaN or infinity at index {tuple(int(i) for i in bad)}")
    return arr
