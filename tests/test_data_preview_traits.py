"""``polymodal data preview`` renders each field as its modality's traits say, never by the value's type."""

from __future__ import annotations

import re

import numpy as np

from polymodal import components
from polymodal.testing import registered_plugin
from polymodal.traits import ModalityTraits
from polymodal_plugins.datasets.preview import render_value, write_preview


class ThermalModality:
    """A third party's modality: raw values are float temperature maps ``[H, W]`` that preview as images."""

    name = "thermal"
    traits = ModalityTraits(continuous=True, space_dims=(1, 2), raw_format="kelvin", preview="image")


class SpectrumModality:
    """Raw values are arrays too, but the modality declares no picture: they preview as text."""

    name = "spectrum"
    traits = ModalityTraits(continuous=True, raw_format="spectrum")


class TinyDataset:
    fields = {"heat": "thermal", "spec": "spectrum", "caption": "text"}
    targets: list[str] = []

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> dict:
        heat = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8) if i == 0 else "not a map"
        return {"id": f"s{i}", "heat": heat, "spec": np.zeros((8, 8, 3), np.uint8), "caption": "a warm cat"}


plugin = components(("modalities", "thermal", ThermalModality, {}), ("modalities", "spectrum", SpectrumModality, {}))


def test_a_third_party_modality_previews_as_it_declares(tmp_path) -> None:
    with registered_plugin(plugin, name="thermal-plugin"):
        path = write_preview(TinyDataset(), tmp_path / "p.html", samples=2)
    html = path.read_text()
    cells = re.findall(r"<td>(.*?)</td>", html, flags=re.S)
    # sample 0: the thermal map is an image; the spectrum (an array, like an image's) is text, as declared
    assert html.count("data:image/png;base64,") == 1
    assert "a warm cat" in html
    # sample 1: a value without the declared form is a one-line error naming the field, not a traceback
    assert any("field &#39;heat&#39;: its modality previews as &#39;image&#39;" in c for c in cells)


def test_the_trait_chooses_the_renderer_not_the_type() -> None:
    picture = np.zeros((4, 4, 3), np.uint8)
    assert render_value(picture, ModalityTraits(pictorial=True))["kind"] == "image"
    assert render_value(picture, ModalityTraits())["kind"] == "text"
    assert render_value([picture, picture], ModalityTraits(preview="frames"))["kind"] == "frames"
    odd = render_value(picture, ModalityTraits(preview="hologram"), "holo")
    assert odd["kind"] == "error" and "field 'holo'" in odd["alt"] and "hologram" in odd["alt"]
