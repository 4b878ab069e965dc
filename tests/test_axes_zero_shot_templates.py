"""Zero-shot prompt templates that name class attributes (``"a {shape} that is {color}"``).

Unseen phrasings in the MiniLM demonstration reorder words around the
attributes, which a ``{}``-only template cannot express; these tests pin the
filling rules and the errors a suite author sees.
"""

from __future__ import annotations

import pytest

from polymodal.errors import ConfigError
from polymodal_plugins.axes.zero_shot import ZeroShotAxis, fill_prompts
from polymodal_plugins.datasets.shapes import COLORS, SHAPES, ShapesDataset


def test_shapes_class_attributes_follow_class_name_order():
    ds = ShapesDataset(split="zeroshot", num_samples=4)
    for target in ("combo", "label", "color", "size", "direction"):
        attrs_ = ds.class_attributes(target)
        assert len(attrs_) == len(ds.class_names[target])
    combos = ds.class_attributes("combo")
    assert [f"{a['color']} {a['shape']}" for a in combos] == ds.class_names["combo"]
    assert combos[0] == {"color": COLORS[0], "shape": SHAPES[0]}


def test_fill_prompts_mixes_class_name_and_attributes_class_major():
    names = ["red circle", "blue square"]
    attributes = [{"color": "red", "shape": "circle"}, {"color": "blue", "shape": "square"}]
    got = fill_prompts(names, ["a {}", "a {shape} that is {color}"], attributes)
    assert got == ["a red circle", "a circle that is red", "a blue square", "a square that is blue"]


def test_attribute_template_without_dataset_attributes_names_the_template():
    with pytest.raises(ConfigError, match=r"'one {shape}' names shape.*no class_attributes"):
        fill_prompts(["cat"], ["one {shape}"], None)


def test_attribute_template_with_unknown_attribute_lists_known_ones():
    with pytest.raises(ConfigError, match=r"names hue, but class 'red circle' has attributes color, shape"):
        fill_prompts(["red circle"], ["a {hue} thing"], [{"color": "red", "shape": "circle"}])


@pytest.mark.parametrize("bad", [["no placeholder"], ["broken {"], ["a {0}"]])
def test_axis_rejects_templates_without_usable_placeholders(bad):
    with pytest.raises(ConfigError, match="template"):
        ZeroShotAxis(templates=bad)


def test_axis_accepts_attribute_only_templates():
    assert ZeroShotAxis(templates=["a {shape} painted {color}"]).templates == ["a {shape} painted {color}"]
