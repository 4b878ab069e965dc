"""Third-party components compose with built-in ones by name, with no core change.

The `shapes` dataset and the image/text modalities and `cnn` encoder are
built-ins; the `minilm` encoder and the `tensor` / `gmu` fusions come from the
contrib distributions, resolved through their installed entry points exactly
as a suite saying ``fusion = "tensor"`` would resolve them.
"""

from __future__ import annotations

import pytest
import torch

from polymodal import build_plugin_manager
from polymodal.data import build_modalities, make_loader

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup():
    plugins = build_plugin_manager(entry_points=True)
    dataset = plugins.build("datasets", "shapes", split="train", num_samples=96, seed=3)
    text_encoder = plugins.build("encoders", "minilm")
    image_encoder = plugins.build("encoders", "cnn", width=8, depth=2, output_dim=16)
    modalities = build_modalities({"image": "image", "text": "text"}, plugins=plugins)
    modalities["text"] = modalities["text"].configure(text_encoder.preprocess_config())
    modalities["image"] = modalities["image"].configure(image_encoder.preprocess_config())
    (batch,) = list(make_loader(dataset, modalities, batch_size=96, fields=["image", "text"]))
    with torch.no_grad():
        text = text_encoder(batch.inputs["text"])  # frozen: encode once
    return plugins, batch, image_encoder, text


@pytest.mark.parametrize("fusion_name", ["tensor", "gmu"])
def test_contrib_fusion_over_minilm_and_cnn_learns_colour(setup, fusion_name):
    plugins, batch, image_encoder, text = setup
    torch.manual_seed(0)
    assert plugins.get("fusions", fusion_name).distribution == "polymodal-fusion-zoo"
    params = {"modality_dim": 8} if fusion_name == "tensor" else {}
    fusion = plugins.build("fusions", fusion_name, {"image": image_encoder.output_dim, "text": text.dim},
                           output_dim=32, **params)
    head = torch.nn.Linear(fusion.output_dim, 6)
    opt = torch.optim.Adam([*image_encoder.parameters(), *fusion.parameters(), *head.parameters()], lr=3e-3)
    labels = batch.targets["color"]

    def logits():
        return head(fusion({"image": image_encoder(batch.inputs["image"]), "text": text}))

    first = torch.nn.functional.cross_entropy(logits(), labels).item()
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(logits(), labels).backward()
        opt.step()
    with torch.no_grad():
        out = logits()
    assert torch.nn.functional.cross_entropy(out, labels).item() < first / 2
    assert (out.argmax(1) == labels).float().mean() > 0.9  # colour is named in every MiniLM-encoded caption
