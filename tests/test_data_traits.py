"""Modality traits: axes decide from declared facts, never from a modality's name."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from polymodal import get_plugins
from polymodal.traits import UNKNOWN, ModalityTraits, normalisation, not_applicable, traits_of

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_NAMES = {"image", "text", "audio", "video"}


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """Non-docstring string constants of a module, with their line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()  # ids of constants that are not logic: docstrings and subscript keys
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            docstrings.add(id(node.slice))  # a record's key (``item["text"]``) names data, not a modality
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def _logic_files() -> list[Path]:
    """core/, the axes' logic, the dataset readers and the training data glue (corruption definitions
    may name the raw format they accept)."""
    files = sorted((ROOT / "core").glob("*.py")) + sorted((ROOT / "plugins" / "axes").glob("*.py"))
    return [f for f in files if not f.name.endswith("_corruptions.py")] + [
        ROOT / "plugins" / "datasets" / "files.py", ROOT / "plugins" / "training" / "data_source.py"]


#: (file, literal) pairs that name a raw format, not a modality, with why.
RAW_FORMAT_LITERALS = {
    # check_corruption's synthetic inputs are keyed by raw format (the tag a corruption carries),
    # and "text" is the text raw format's name as well as the modality's.
    ("core/contract_checks_app.py", "text"),
}


def test_no_builtin_modality_name_literal_in_core_or_axes():
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}"
             for path in _logic_files() for line, value in _string_literals(path)
             if value in BUILTIN_NAMES and (str(path.relative_to(ROOT)), value) not in RAW_FORMAT_LITERALS]
    assert not found, "modality names in logic (declare a trait instead):\n" + "\n".join(found)


def test_the_scan_finds_a_literal():
    tree_file = ROOT / "tests" / "test_data_traits.py"
    assert any(v == "image" for _l, v in _string_literals(tree_file))  # BUILTIN_NAMES above


@pytest.mark.parametrize("kind", sorted(BUILTIN_NAMES))
def test_builtin_modalities_declare_traits(kind):
    modality = get_plugins().build("modalities", kind)
    traits = traits_of(modality)
    assert traits is not UNKNOWN and traits.raw_format
    assert traits.perturb_input or traits.perturb_embedding
    if traits.normalised:
        mean, std = normalisation(modality)
        assert len(mean) == len(std) and min(std) > 0
    assert ModalityTraits(**{k: v for k, v in traits.to_json().items()}) == traits


def test_undeclared_modality_is_unknown_and_explained():
    class Thermal:
        name = "thermal"

    assert traits_of(Thermal()) is UNKNOWN
    assert normalisation(Thermal()) is None
    msg = not_applicable("occlusion", "heat", Thermal(), "space_dims")
    assert "'heat'" in msg and "'thermal'" in msg and "because" in msg and "space_dims" in msg


def test_adversarial_axis_reports_an_undeclared_modality_as_not_applicable():
    """A field whose modality declares no way to perturb it is skipped with a reason row, not a crash."""
    import torch

    from polymodal_plugins.axes.adversarial import AdversarialAxis

    from polymodal.batch import Batch, ModalityBatch

    class Opaque:
        name = "opaque"

        def load(self, value, root=None):
            return value

        def preprocess(self, raw):
            return torch.as_tensor(raw, dtype=torch.float32)

        def collate(self, values):
            return ModalityBatch(torch.stack(values), torch.ones(len(values), dtype=torch.bool), {})

    class Collate:
        modalities = {"x": Opaque()}

        def __call__(self, samples):
            return Batch({"x": self.modalities["x"].collate([torch.tensor(s["x"], dtype=torch.float32)
                                                              for s in samples])},
                         {"y": torch.tensor([s["y"] for s in samples])}, [s["id"] for s in samples])

    class Model(torch.nn.Module):
        input_fields = ("x",)
        capabilities = frozenset({"classify"})

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def predict(self, batch):
            return self.lin(batch.inputs["x"].data)

        def target(self, batch):
            return batch.targets["y"]

        def input_embedding(self, field):
            return None

    class Data:
        splits = {"test": [{"x": [float(i), 1.0], "y": i % 2, "id": i} for i in range(4)]}
        collate = Collate()

    from polymodal.evaluation import AxisContext

    ctx = AxisContext(run="r", axis="robustness.adversarial", conditions={}, device=torch.device("cpu"),
                      plugins=get_plugins(), model_ctx=None, out_dir=ROOT)
    rows = list(AdversarialAxis(attacks=["fgsm"], epsilons=[0.1]).run(Model(), Data(), ctx))
    skipped = [r for r in rows if r.conditions.get("attack") == "not_applicable"]
    assert len(skipped) == 1 and skipped[0].value is None
    assert "because" in skipped[0].extra["reason"] and "'opaque'" in skipped[0].extra["reason"]


def _invert(raw, severity, rng):
    return 255 - raw


def test_a_plugin_corruption_joins_its_raw_format_and_is_listed():
    """Corruptions are a registered kind: one from another plugin is found by the raw format it accepts."""
    import numpy as np

    from polymodal import build_plugin_manager, component
    from polymodal_plugins.axes.corruption import available, get_corruption, short_name
    from polymodal_plugins.corruptions import image_plugin

    extra = component("corruptions", "rgb.invert", _invert, description="Invert the pixels.", tags=["rgb"])
    plugins = build_plugin_manager(entry_points=False, extra_plugins={"corruption.rgb": image_plugin,
                                                                      "mine": extra})
    assert "invert" in available("rgb", plugins) and "blur" in available("rgb", plugins)
    assert "invert" not in available("text", plugins)
    pixels = np.zeros((2, 2, 3), np.uint8)
    assert (get_corruption("rgb", "invert", plugins=plugins)(pixels, 1, np.random.default_rng(0)) == 255).all()
    assert short_name("rgb.invert", "rgb") == "invert" and short_name("standalone") == "standalone"
    with pytest.raises(Exception, match=r"no corruption 'invrt' for raw format 'rgb'.*did you mean 'invert'"):
        get_corruption("rgb", "invrt", plugins=plugins)


def test_info_shows_a_modalitys_traits(capsys):
    from polymodal.cli import main

    assert main(["info", "modality", "image", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["traits"]["pictorial"] is True and info["traits"]["raw_format"] == "rgb"
    assert main(["info", "modality", "text"]) == 0
    assert "traits: " in capsys.readouterr().out
