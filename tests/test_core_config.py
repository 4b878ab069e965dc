"""TOML configs into typed attrs objects, with errors that say where and what."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import pytest

from polymodal.config import apply_overrides, load, load_toml, parse_override, structure
from polymodal.errors import ConfigError


@attrs.frozen
class Optim:
    name: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3


@attrs.frozen
class Train:
    epochs: int
    optim: Optim = Optim()
    tags: list[str] = attrs.field(factory=list)
    seed: int | None = None
    params: dict[str, float] = attrs.field(factory=dict)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


def test_valid_config_is_typed(tmp_path: Path) -> None:
    p = write(tmp_path, 'epochs = 3\ntags = ["a"]\n[optim]\nname = "sgd"\nlr = 1\n[params]\nx = 2\n')
    t = load(Train, p)
    assert t == Train(epochs=3, optim=Optim("sgd", 1.0), tags=["a"], params={"x": 2.0})
    assert isinstance(t.optim.lr, float)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('epochs = "3"\n', "epochs: expected an integer, got a string ('3')"),
        ("epochs = 3\n[optim]\nlr = true\n", "optim.lr: expected a number, got a boolean"),
        ("epochs = 3\n[optim]\nname = 'adamw'\n", "optim.name: expected one of 'adam', 'sgd', got 'adamw' (did you mean 'adam'?)"),
        ("epochs = 3\nepocs = 4\n", "epocs: unknown key (did you mean 'epochs'?)"),
        ("[optim]\nlr = 0.1\n", "missing required key 'epochs'"),
        ("epochs = 3\ntags = [1]\n", "tags[0]: expected a string"),
        ("epochs = 3\noptim = 5\n", "optim: expected a table"),
        ("epochs = 3\nseed = 1.5\n", "seed: expected int or nothing"),
    ],
)
def test_errors_name_file_key_and_expected_type(tmp_path: Path, text: str, fragment: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(Train, p)
    assert str(err.value).startswith(str(p))
    assert fragment in str(err.value)


def test_toml_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    p = write(tmp_path, "epochs = = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_toml(p)
    with pytest.raises(ConfigError, match="no such config file"):
        load_toml(tmp_path / "missing.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError):
        load_toml(tmp_path / "bin.toml")


def test_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "epochs = 3\n")
    t = load(Train, p, ["optim.lr=0.5", "tags=['x', 'y']", "epochs=7", "optim.name=sgd"])
    assert t.epochs == 7 and t.optim.lr == 0.5 and t.tags == ["x", "y"] and t.optim.name == "sgd"
    assert parse_override("a.b=hello world") == (["a", "b"], "hello world")
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        parse_override("novalue")
    with pytest.raises(ConfigError, match="is a int, not a table"):
        apply_overrides({"epochs": 3}, ["epochs.x=1"])
    with pytest.raises(ConfigError, match="<override>"):
        structure(Train, apply_overrides({"epochs": 3}, ["epochs=abc"]), "<override>")


def test_config_is_data_only(tmp_path: Path) -> None:
    # a string that looks like code stays a string; nothing is evaluated
    p = write(tmp_path, 'epochs = 1\ntags = ["__import__(\'os\').system(\'false\')"]\n')
    assert load(Train, p).tags == ["__import__('os').system('false')"]
