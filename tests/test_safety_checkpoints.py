"""Atomic checkpoints: a save killed at any write leaves the old checkpoint or the new one, never a mix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import polymodal.checkpoint as ckpt
from polymodal.errors import DataError


class Killed(BaseException):
    """Stands for a SIGKILL at a write point (BaseException: nothing may catch and clean up)."""


def _save(folder: Path, model: nn.Module, epoch: int) -> None:
    ckpt.save_checkpoint(folder, model, experiment={"e": 1}, context={}, position={"epoch": epoch, "global_step": epoch},
                         train_state={"step": torch.tensor(epoch)},
                         companions=lambda d: (d / "vocab-text.json").write_text(f'["v{epoch}"]') and
                         {"vocabularies": {"text": "vocab-text.json"}})


def _state(folder: Path) -> tuple[int, float, int, str]:
    meta = ckpt.verify_checkpoint(folder)
    weight = float(ckpt.load_state_dict(folder / "model.safetensors")["weight"][0, 0])
    state = ckpt.load_train_state(folder)
    assert state is not None
    return meta["position"]["epoch"], weight, int(state["step"]), (folder / "vocab-text.json").read_text()


def test_a_save_killed_at_every_write_point_leaves_one_whole_checkpoint(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    base = tmp_path / "base"
    _save(base / "checkpoint", model, 1)
    old = _state(base / "checkpoint")
    with torch.no_grad():
        model.weight.fill_(2.0)
    points: list[str] = []
    monkeypatch.setattr(ckpt, "write_point", points.append)
    _save(tmp_path / "count" / "checkpoint", model, 2)
    new = _state(tmp_path / "count" / "checkpoint")
    assert old == (1, 1.0, 1, '["v1"]') and new == (2, 2.0, 2, '["v2"]')
    assert len(points) >= 6, points  # weights, state, metadata (write + fsync each) and the switch
    for n in range(1, len(points) + 1):
        trial = tmp_path / f"kill{n}"
        shutil.copytree(base, trial, symlinks=True)
        calls = 0

        def fault(what: str, n: int = n) -> None:
            nonlocal calls
            calls += 1
            if calls == n:
                raise Killed(what)

        monkeypatch.setattr(ckpt, "write_point", fault)
        with pytest.raises(Killed):
            _save(trial / "checkpoint", model, 2)
        got = _state(trial / "checkpoint")
        assert got == old, f"a kill at write point {n} ({points[n - 1]}) switched to an incomplete checkpoint"
        monkeypatch.setattr(ckpt, "write_point", lambda what: None)
        _save(trial / "checkpoint", model, 2)  # the next save cleans up and succeeds
        assert _state(trial / "checkpoint") == new
        assert [p.name for p in trial.iterdir() if p.name.startswith(".")] == []
        assert len([p for p in trial.iterdir() if p.name.startswith("checkpoint-")]) == 1  # the old one is gone


def test_weights_from_another_save_are_named_on_resume(tmp_path: Path) -> None:
    """Issue 15 scenario 4: epoch-1 metadata beside epoch-2 weights must not pass silently."""
    model = nn.Linear(2, 2)
    _save(tmp_path / "a" / "checkpoint", model, 1)
    with torch.no_grad():
        model.weight.add_(1.0)
    _save(tmp_path / "b" / "checkpoint", model, 2)
    shutil.copy(tmp_path / "b" / "checkpoint" / "model.safetensors", tmp_path / "a" / "checkpoint" / "model.safetensors")
    with pytest.raises(DataError, match=r"model.safetensors: does not belong to .*checkpoint.json \(step id 000000001-"):
        ckpt.verify_checkpoint(tmp_path / "a" / "checkpoint")
