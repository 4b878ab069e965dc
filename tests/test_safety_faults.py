"""Fault injection: random SIGKILLs then resume, a full disk, broken checkpoints, hostile files."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import signal
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from polymodal.errors import DataError, PolymodalError
from polymodal.results import JsonlStore
from test_runner import SUITE, kill_on_progress, polymodal, result_lines, rows, site  # noqa: F401 - fixture

KILL_SEED = 20240601


@pytest.mark.e2e
def test_random_sigkills_then_resume_equal_the_uninterrupted_run(site: Path, tmp_path: Path) -> None:  # noqa: F811
    """Kill at moments drawn from a seeded RNG, repeatedly on one folder; resume must lose and repeat nothing."""
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.replace("levels = 3", "levels = 3\ndelay = 0.3"))
    ref = tmp_path / "ref"
    proc = polymodal(["run", str(suite), "--out", str(ref), "--no-report", "-q"], site)
    assert proc.returncode == 0, proc.stderr
    expected = sorted(rows(ref))
    rng = random.Random(KILL_SEED)
    out = tmp_path / "killed"
    for _ in range(4):
        # a seeded random point in the remaining work: 0 is during training, n is after the n-th row
        target = rng.randint(0, len(expected) - 1) if result_lines(out) == 0 else rng.randint(
            result_lines(out) + 1, len(expected) - 1)
        p = polymodal(["run", str(suite), "--out", str(out), "--no-report", "-q",
                       *(["--resume"] if (out / "manifest.json").exists() else [])], site, background=True)
        kill_on_progress(p, out, target)
        if (out / "results.jsonl").exists():  # whatever was acknowledged is whole rows
            text = (out / "results.jsonl").read_bytes()
            assert all(json.loads(line) for line in text.splitlines()[: text.count(b"\n")])
        if result_lines(out) >= len(expected) - 1:
            break
    proc = polymodal(["run", str(suite), "--out", str(out), "--resume", "--no-report", "-q"], site)
    assert proc.returncode == 0, proc.stderr
    got = rows(out)
    assert len(got) == len(set(got)), "duplicate rows after resume"
    assert sorted(got) == expected


def test_full_disk_is_a_clear_error_and_leaves_whole_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = JsonlStore(tmp_path / "results.jsonl")
    store.append({"metric": "a", "value": 1})
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])  # the disk fills up mid-line
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(PolymodalError, match="No space left on device"):
        store.append({"metric": "b", "value": 2})
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:3]))  # short write
    with pytest.raises(PolymodalError, match="disk full"):
        store.append({"metric": "c", "value": 3})
    monkeypatch.undo()
    assert [r["metric"] for r in store.read()] == ["a"] and store.torn_lines == 0
    store.append({"metric": "d", "value": 4})
    assert [json.loads(line)["metric"] for line in (tmp_path / "results.jsonl").read_text().splitlines()] == ["a", "d"]


class Small(nn.Module):
    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.enc = nn.Linear(3, hidden)
        self.head = nn.Linear(hidden, 2)


def test_truncated_and_foreign_checkpoints_name_what_does_not_match(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from polymodal.checkpoint import load_module_weights, read_meta

    path = tmp_path / "model.safetensors"
    save_file(dict(Small().state_dict()), str(path))
    load_module_weights(Small(), path)  # the good file loads
    data = path.read_bytes()
    for cut in (0, 7, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(DataError, match="not a valid safetensors file"):
            load_module_weights(Small(), path)
    save_file(dict(Small(hidden=5).state_dict()), str(path))
    with pytest.raises(DataError, match=r"enc.weight: checkpoint \(5, 3\) vs model \(4, 3\)"):
        load_module_weights(Small(), path)
    save_file({"other.weight": torch.zeros(2)}, str(path))
    with pytest.raises(DataError, match=r"missing 4 tensors.*unexpected 1 tensors \(e.g. other.weight\)"):
        load_module_weights(Small(), path)
    (tmp_path / "checkpoint.json").write_text('{"format": 1, "experiment": ' + "[" * 50000)
    with pytest.raises(DataError, match="unreadable checkpoint metadata"):
        read_meta(tmp_path)


# ---- specific hostile inputs -----------------------------------------------------------------

def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width x height`` pixels (a decompression bomb's header)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_decompression_bomb_png_is_refused_before_decoding(tmp_path: Path) -> None:
    from polymodal_plugins.modalities.image import ImageModality

    (tmp_path / "bomb.png").write_bytes(_png_claiming(200_000, 200_000))
    with pytest.raises(DataError, match="bomb.png"):
        ImageModality().load("bomb.png", tmp_path)
    (tmp_path / "big.png").write_bytes(_png_claiming(8_000, 8_000))  # under Pillow's bomb limit, over ours
    with pytest.raises(DataError, match="more than the limit of"):
        ImageModality(max_pixels=1_000_000).load("big.png", tmp_path)


def test_wav_header_claiming_gigabytes_is_refused(tmp_path: Path) -> None:
    from polymodal_plugins.modalities.audio import AudioModality

    samples = b"\x00\x01" * 800
    header = (b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000,
              16000, 2, 16) + b"data" + struct.pack("<I", 0xFFFFFF00))
    (tmp_path / "huge.wav").write_bytes(header + samples)
    tracemalloc.start()
    try:
        m = AudioModality(max_seconds=1.0)
        out = m.preprocess(m.load("huge.wav", tmp_path))
        # only the 800 samples really present (resampled to the modality's rate), never the header's claim
        assert out.shape[0] <= 800 * m.sample_rate // 8000 + 1
    except DataError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6
    # a header with a sample rate no real file has (2^31-1 Hz) would need a 40 GB resampling kernel
    rate = header.replace(struct.pack("<I", 8000), struct.pack("<I", 2**31 - 1), 1)
    (tmp_path / "rate.wav").write_bytes(rate + samples)
    with pytest.raises(DataError, match="sample rate"):
        m.preprocess(m.load("rate.wav", tmp_path))


def test_ten_million_token_caption_costs_bounded_memory(tmp_path: Path) -> None:
    from polymodal_plugins.modalities.text import TextModality

    m = TextModality(max_length=16)
    m.fit(["a red square", "a blue circle"])
    caption = "red " * 10_000_000
    tracemalloc.start()
    ids = m.preprocess(m.load(caption))
    direct = m.vocab.encode(caption, max_length=16)  # even without load()'s cut
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(ids) == 16 and len(direct) == 16 and ids.tolist() == direct
    assert peak < 100e6, f"peak {peak / 1e6:.0f} MB for a 40 MB caption"


def test_paths_escaping_the_dataset_root_are_refused(tmp_path: Path) -> None:
    from polymodal_plugins.datasets.manifest import Manifest

    root = tmp_path / "ds"
    root.mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "outside.png")
    Image.new("RGB", (4, 4)).save(root / "inside.png")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    for bad in ("../outside.png", str(tmp_path / "outside.png"), "link.png", "sub/../../outside.png"):
        (root / "manifest.jsonl").write_text(json.dumps({"image": bad, "label": 0}) + "\n")
        with pytest.raises(DataError, match="outside the dataset root"):
            Manifest(root)[0]
    with pytest.raises(DataError, match="outside the dataset root"):
        Manifest(root, path="../outside.png")
    (root / "manifest.jsonl").write_text(json.dumps({"image": "inside.png", "label": 0}) + "\n")
    assert Manifest(root)[0]["image"].size == (4, 4)
