"""The text-to-image model: shapes, gradients, learning, and colour following the caption."""

from __future__ import annotations

import pytest
import torch

from polymodal import ConfigError, DataError, PluginSettings, build_plugin_manager
from polymodal.batch import Batch, ModalityBatch
from polymodal.experiment import ModelConfig
from polymodal.model_api import FieldInfo, ModelContext, build_model

torch.set_num_threads(1)

VOCAB = ["<pad>", "a", "red", "green", "blue", "square", "circle"]
COLOURS = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.8, 0.1), "blue": (0.1, 0.1, 0.9)}
SMALL = {"text_dim": 32, "text_layers": 1, "width": 16, "image_size": 16}
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def scene(colour: str, shape: str) -> torch.Tensor:
    img = torch.zeros(3, 16, 16)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    inside = ((yy - 8) ** 2 + (xx - 8) ** 2 <= 25) if shape == "circle" else ((yy - 8).abs() <= 4) & ((xx - 8).abs() <= 4)
    img[:, inside] = torch.tensor(COLOURS[colour]).view(3, 1)
    return img


ITEMS = [(c, s) for c in COLOURS for s in ("square", "circle")]


def make_batch(items, normalised: bool = False) -> Batch:
    images = torch.stack([scene(c, s) for c, s in items])
    if normalised:
        images = (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    tokens = torch.tensor([[1, VOCAB.index(c), VOCAB.index(s), 0] for c, s in items])
    mask = tokens != 0
    return Batch({"caption": ModalityBatch(tokens, mask), "image": ModalityBatch(images, torch.ones(len(items), dtype=torch.bool))})


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_manager(PluginSettings(), entry_points=True)


def make_model(plugins, image_params=None, **params):
    ctx = ModelContext(
        plugins=plugins,
        fields={"caption": FieldInfo("caption", "text", {"vocab_size": len(VOCAB), "vocab": VOCAB}),
                "image": FieldInfo("image", "image", {"channels": 3, **(image_params or {})})},
    )
    torch.manual_seed(0)
    return build_model(ModelConfig(name="text-to-image", params={**SMALL, **params}), ctx)


def test_registered_with_generate_capability(plugins):
    assert plugins.get("models", "text-to-image").capabilities == frozenset({"generate"})


@pytest.mark.parametrize("size", [8, 16, 32])
def test_generated_images_have_the_configured_shape_and_range(plugins, size):
    model = make_model(plugins, image_size=size)
    out = model.generate(make_batch(ITEMS))
    assert out.shape == (len(ITEMS), 3, size, size)
    assert out.min() >= 0 and out.max() <= 1
    ps = [m for m in model.net.decoder.modules() if isinstance(m, torch.nn.PixelShuffle)]
    assert len(ps) == {8: 1, 16: 2, 32: 3}[size]


def test_gradient_reaches_text_encoder_and_decoder(plugins):
    model = make_model(plugins)
    loss, _ = model.loss(make_batch(ITEMS))
    loss.backward()
    for part in ("encoders.caption.embed.weight", "encoders.caption.body.layers.0.self_attn.in_proj_weight",
                 "net.decoder.seed.weight", "net.decoder.to_rgb.weight"):
        grad = dict(model.named_parameters())[part].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, part


def train(model, batch, steps, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = float(model.loss(batch)[0].detach())
    for _ in range(steps):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, float(model.loss(batch)[0].detach())


def test_l1_reconstruction_loss_falls(plugins):
    model = make_model(plugins, loss="l1")
    first, final = train(model, make_batch(ITEMS), 120, 1e-3)
    assert final < 0.5 * first, (first, final)


def test_learns_to_draw_the_colour_and_shape_of_the_caption(plugins):
    model = make_model(plugins)
    batch = make_batch(ITEMS)
    first, final = train(model, batch, 100, 3e-3)
    assert final < 0.05 * first, (first, final)
    with torch.no_grad():
        out = model.generate(batch)
    target = batch.inputs["image"].data
    for i, (colour, _) in enumerate(ITEMS):
        shape_pixels = target[i].sum(0) > 0
        mean_rgb = out[i][:, shape_pixels].mean(1)
        assert int(mean_rgb.argmax()) == int(torch.tensor(COLOURS[colour]).argmax()), (colour, mean_rgb)
    # The shape is drawn where the reference has it: brighter inside than outside.
    inside = torch.stack([out[i][:, target[i].sum(0) > 0].max(0).values.mean() for i in range(len(ITEMS))])
    outside = torch.stack([out[i][:, target[i].sum(0) == 0].max(0).values.mean() for i in range(len(ITEMS))])
    assert (inside > outside + 0.3).all()


def test_normalised_image_targets_are_mapped_back_to_unit_range(plugins):
    plain = make_model(plugins)
    normed = make_model(plugins, image_params={"mean": MEAN, "std": STD})
    a = plain.loss(make_batch(ITEMS))[0]
    b = normed.loss(make_batch(ITEMS, normalised=True))[0]
    torch.testing.assert_close(a, b)


def test_bad_config_and_data_are_platform_errors(plugins):
    with pytest.raises(ConfigError, match="4 \\* 2\\*\\*k"):
        make_model(plugins, image_size=24)
    with pytest.raises(ConfigError, match="l1, mse"):
        make_model(plugins, loss="huber")
    model = make_model(plugins, image_size=32)
    with pytest.raises(DataError, match="image_size"):
        model.loss(make_batch(ITEMS))
    batch = make_batch(ITEMS)
    del batch.inputs["caption"]
    with pytest.raises(DataError, match="no text field 'caption'"):
        model.generate(batch)


def test_checkpoint_round_trip_gives_identical_images(plugins, tmp_path):
    from polymodal.checkpoint import load_model, save_checkpoint

    model = make_model(plugins).eval()
    batch = make_batch(ITEMS)
    ctx = ModelContext(plugins=plugins, fields={
        "caption": FieldInfo("caption", "text", {"vocab_size": len(VOCAB), "vocab": VOCAB}),
        "image": FieldInfo("image", "image", {"channels": 3})})
    experiment = {"data": {"dataset": "toy"}, "model": {"name": "text-to-image", "params": SMALL}}
    save_checkpoint(tmp_path / "ckpt", model, experiment=experiment, context=ctx.to_json())
    loaded = load_model(tmp_path / "ckpt", plugins)
    torch.testing.assert_close(loaded.generate(batch), model.generate(batch), rtol=0, atol=0)
