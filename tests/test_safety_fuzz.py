"""Property-based fuzzing of everything that reads user files.

Property, for every reader: any input gives either a valid result or a
:class:`PolymodalError` subclass with a message -- never another exception,
and never a hang (each example runs under an alarm). Example counts are fixed
and the search is derandomised, so CI is reproducible and fast; the counts
are summed in docs/SECURITY.md.
"""

from __future__ import annotations

import io
import json
import signal
import string
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from polymodal.errors import PolymodalError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])
SECONDS_PER_EXAMPLE = 20


@contextmanager
def no_hang(seconds: int = SECONDS_PER_EXAMPLE) -> Iterator[None]:
    """Fail the example (instead of hanging CI) when a reader loops on hostile input."""
    def fire(signum: int, frame: Any) -> None:
        raise AssertionError(f"reader did not return within {seconds}s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def valid_or_platform_error(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a PolymodalError must carry a message, anything else escapes and fails the test."""
    with no_hang():
        try:
            return fn()
        except PolymodalError as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
            return exc


# ---- building blocks: plausible-but-broken structures -----------------------------------------

KEYS = ["name", "seeds", "include", "defaults", "runs", "axes", "model", "data", "train", "encoders", "fusion",
        "dataset", "params", "batch_size", "epochs", "sweep", "image", "text", "cnn", "levels", "lr", "optimizer",
        "seed", "threads", "head", "splits", "split", "fields", "targets", "", "a.b", "ünï"]
present = st.one_of(st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["shapes", "concat", "cnn", "fusion-classifier", "x"]))
scalars = st.none() | present
toml_values = st.recursive(
    present,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=25,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS + ["image_id", "caption", "annotations", "images",
                                                                    "id", "file_name", "label", "tokens", "format"]),
                                            inner, max_size=5)),
    max_leaves=25,
)


def toml_text(data: dict[str, Any]) -> str:
    """A small TOML writer (inline tables), enough to turn generated dicts into files."""
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v) if -2**63 <= v < 2**63 else f'"{v}"'
        if isinstance(v, float):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {val(x)}" for k, x in v.items()) + "}"
    return "\n".join(f"{json.dumps(k)} = {val(v)}" for k, v in data.items()) + "\n"


# ---- config and suite parser ------------------------------------------------------------------

@FUZZ
@given(raw=st.binary(max_size=300) | st.text(alphabet=string.printable + "[]{}=\"'.é", max_size=300)
       .map(lambda s: s.encode("utf-8")))
def test_fuzz_suite_file_bytes(tmp_path: Path, raw: bytes) -> None:
    from polymodal.suite import expand_suite, load_suite_dict

    path = tmp_path / "suite.toml"
    path.write_bytes(raw)
    valid_or_platform_error(lambda: expand_suite(load_suite_dict(path), str(path)))


@FUZZ
@given(data=st.dictionaries(st.sampled_from(KEYS), toml_values, max_size=6),
       overrides=st.lists(st.text(alphabet=string.ascii_letters + "._=[]{}\"0123456789 ", max_size=20), max_size=3))
def test_fuzz_suite_structures_and_overrides(tmp_path: Path, data: dict[str, Any], overrides: list[str]) -> None:
    from polymodal.suite import expand_suite, load_suite_dict

    path = tmp_path / "suite.toml"
    path.write_text(toml_text(data), encoding="utf-8")
    valid_or_platform_error(lambda: expand_suite(load_suite_dict(path, overrides), str(path)))


@FUZZ
@given(data=st.dictionaries(st.sampled_from(KEYS), toml_values, max_size=6))
def test_fuzz_experiment_from_dict(data: dict[str, Any]) -> None:
    from polymodal.experiment import experiment_from_dict

    valid_or_platform_error(lambda: experiment_from_dict(data, "fuzz.toml"))


@FUZZ
@given(data=toml_values)
def test_fuzz_structure_plugin_section(data: Any) -> None:
    from polymodal.config import PluginsSection, structure

    valid_or_platform_error(lambda: structure(PluginsSection, data, "fuzz.toml"))


# ---- dataset manifests ------------------------------------------------------------------------

def _load_all(ds: Any) -> None:
    for i in range(min(len(ds), 5)):
        ds[i]


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".jsonl", ".csv"]),
       on_error=st.sampled_from(["raise", "skip"]))
def test_fuzz_manifest_bytes(tmp_path: Path, raw: bytes, suffix: str, on_error: str) -> None:
    from polymodal_plugins.datasets.manifest import Manifest

    (tmp_path / f"m{suffix}").write_bytes(raw)
    valid_or_platform_error(lambda: _load_all(Manifest(tmp_path, path=f"m{suffix}", on_error=on_error)))


@FUZZ
@given(rows=st.lists(st.dictionaries(st.sampled_from(["image", "text", "caption", "audio", "video", "label", "id",
                                                      "split", "image_2", "texts"]),
                                     json_values | st.sampled_from(["../x.png", "/etc/passwd", "a.png", "²", "-"]),
                                     max_size=5), max_size=5))
def test_fuzz_manifest_rows(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    from polymodal_plugins.datasets.manifest import Manifest

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    valid_or_platform_error(lambda: _load_all(Manifest(tmp_path, split="train")))


@FUZZ
@given(data=json_values)
def test_fuzz_coco_annotations(tmp_path: Path, data: Any) -> None:
    from polymodal_plugins.datasets.coco_captions import CocoCaptions

    (tmp_path / "images").mkdir(exist_ok=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "a.png")
    (tmp_path / "captions.json").write_text(json.dumps(data), encoding="utf-8")
    valid_or_platform_error(lambda: _load_all(CocoCaptions(tmp_path)))


# ---- modality loaders on arbitrary and mutated files -------------------------------------------

def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)).save(buf, "PNG")
    return buf.getvalue()


def _gif() -> bytes:
    buf = io.BytesIO()
    frames = [Image.new("RGB", (6, 6), (i * 40, 0, 0)) for i in range(3)]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes((np.sin(np.arange(800) / 5) * 3000).astype("<i2").tobytes())
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 6, 6, 3), dtype=np.uint8))
    return buf.getvalue()


SEEDS = {".png": _png(), ".gif": _gif(), ".wav": _wav(), ".npy": _npy()}


@st.composite
def mutated_file(draw: Any) -> tuple[str, bytes]:
    """A real file of some format, truncated, bit-flipped or spliced -- or pure noise."""
    suffix = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[suffix])
    how = draw(st.sampled_from(["truncate", "flip", "splice", "noise"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif how == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(max_size=64))
    else:
        data = bytearray(draw(st.binary(max_size=200)))
    return suffix, bytes(data)


@FUZZ
@given(file=mutated_file())
def test_fuzz_modality_loaders(tmp_path: Path, file: tuple[str, bytes]) -> None:
    from polymodal_plugins.modalities.audio import AudioModality
    from polymodal_plugins.modalities.image import ImageModality
    from polymodal_plugins.modalities.video import VideoModality

    suffix, data = file
    (tmp_path / f"f{suffix}").write_bytes(data)
    for modality in (ImageModality(size=8), AudioModality(max_seconds=1.0), VideoModality(frames=2, size=8)):
        out = valid_or_platform_error(lambda m=modality: m.preprocess(m.load(f"f{suffix}", tmp_path)))
        if not isinstance(out, PolymodalError):
            assert out.numel() > 0 and bool(out.isfinite().all()), f"{modality.name}: non-finite features"


@FUZZ
@given(raw=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_vocabulary_files(tmp_path: Path, raw: bytes) -> None:
    from polymodal_plugins.modalities.vocabulary import Vocabulary

    (tmp_path / "vocab.json").write_bytes(raw)
    valid_or_platform_error(lambda: Vocabulary.load(tmp_path / "vocab.json"))


@FUZZ
@given(text=st.text(max_size=400))
def test_fuzz_text_modality_any_caption(text: str) -> None:
    from polymodal_plugins.modalities.text import TextModality

    m = TextModality(max_length=8)
    m.fit(["a red square", text])
    out = valid_or_platform_error(lambda: m.preprocess(m.load(text)))
    if not isinstance(out, PolymodalError):
        assert 2 <= len(out) <= 8 and int(out.max()) < m.vocab_size


# ---- prediction files of `polymodal score` -----------------------------------------------------

@FUZZ
@given(refs=json_values | st.fixed_dictionaries({"annotations": st.lists(json_values, max_size=4)}),
       preds=json_values | st.lists(st.fixed_dictionaries({"image_id": json_values, "caption": json_values}),
                                    max_size=4),
       raw=st.none() | st.binary(max_size=100))
def test_fuzz_score_caption_files(tmp_path: Path, refs: Any, preds: Any, raw: bytes | None) -> None:
    from polymodal_plugins.metrics.score_inputs import read_caption_files

    (tmp_path / "refs.json").write_text(json.dumps(refs))
    (tmp_path / "preds.json").write_bytes(raw if raw is not None else json.dumps(preds).encode())
    out = valid_or_platform_error(lambda: read_caption_files(tmp_path / "refs.json", tmp_path / "preds.json"))
    if not isinstance(out, PolymodalError):
        ids, cands, references = out
        assert len(ids) == len(cands) == len(references) > 0


@FUZZ
@given(file=mutated_file(), ndim=st.integers(1, 4), integer=st.booleans())
def test_fuzz_score_arrays(tmp_path: Path, file: tuple[str, bytes], ndim: int, integer: bool) -> None:
    from polymodal_plugins.metrics.score_inputs import read_array

    (tmp_path / "a.npy").write_bytes(file[1])
    out = valid_or_platform_error(lambda: read_array(tmp_path / "a.npy", "features", ndim, integer))
    if not isinstance(out, PolymodalError):
        assert out.ndim == ndim


@pytest.mark.parametrize("kind", ["captions", "retrieval", "fid"])
@FUZZ
@given(raw=st.binary(max_size=120))
def test_fuzz_score_command_end_to_end(tmp_path: Path, kind: str, raw: bytes) -> None:
    """The CLI handler itself: garbage files -> exit code 2 and a message, never a traceback."""
    import argparse

    from polymodal_plugins.commands.score import add_score_command

    parser = argparse.ArgumentParser()
    handler = add_score_command(parser.add_subparsers().add_parser("score"))
    for name in ("a.json", "b.json", "a.npy", "b.npy"):
        (tmp_path / name).write_bytes(raw)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    args = {
        "captions": ["captions", "--references", a + ".json", "--predictions", b + ".json"],
        "retrieval": ["retrieval", "--image-embeddings", a + ".npy", "--text-embeddings", b + ".npy",
                      "--text-to-image", a + ".npy"],
        "fid": ["fid", "--real", a + ".npy", "--generated", b + ".npy"],
    }[kind]
    valid_or_platform_error(lambda: handler(parser.parse_args(["score", *args])))
