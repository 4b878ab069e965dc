"""The captioner model: gradients, decoding, attention maps and learning on a tiny set."""

from __future__ import annotations

import pytest
import torch

from polymodal import ConfigError, DataError, PluginSettings, build_plugin_manager
from polymodal.batch import Batch, ModalityBatch
from polymodal.experiment import ModelConfig
from polymodal.model_api import FieldInfo, ModelContext, build_model

torch.set_num_threads(1)

VOCAB = ["<pad>", "a", "red", "green", "blue", "square", "on", "the", "left", "right", "top"]
COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 0.9, 0.1), "blue": (0.1, 0.2, 1.0)}
PLACES = {"left": (slice(4, 12), slice(0, 8)), "right": (slice(4, 12), slice(8, 16)), "top": (slice(0, 8), slice(4, 12))}
SMALL = {"hidden": 64, "embed_dim": 32, "attn_dim": 32, "feature_dim": 32, "cnn_width": 8, "cnn_depth": 2, "dropout": 0.0}


def scene(colour: str, place: str, seed: int) -> tuple[torch.Tensor, list[int]]:
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(3, 16, 16, generator=g) * 0.15
    rows, cols = PLACES[place]
    img[:, rows, cols] = torch.tensor(COLOURS[colour]).view(3, 1, 1)
    words = ["a", colour, "square", "on", "the", place]
    return img, [VOCAB.index(w) for w in words]


def make_batch(items: list[tuple[str, str]], seed: int = 0, pad_to: int = 8) -> Batch:
    images, tokens, masks = [], [], []
    for i, (colour, place) in enumerate(items):
        img, ids = scene(colour, place, seed + i)
        images.append(img)
        tokens.append(ids + [0] * (pad_to - len(ids)))
        masks.append([True] * len(ids) + [False] * (pad_to - len(ids)))
    return Batch(
        {"image": ModalityBatch(torch.stack(images), torch.ones(len(items), dtype=torch.bool)),
         "caption": ModalityBatch(torch.tensor(tokens), torch.tensor(masks))},
    )


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_manager(PluginSettings(), entry_points=True)


def model_context(plugins) -> ModelContext:
    return ModelContext(
        plugins=plugins,
        fields={"image": FieldInfo("image", "image", {"channels": 3, "size": [16, 16]}),
                "caption": FieldInfo("caption", "text", {"vocab_size": len(VOCAB), "vocab": VOCAB, "pad_id": 0})},
    )


def make_model(plugins, **params):
    torch.manual_seed(0)
    return build_model(ModelConfig(name="captioner", params={**SMALL, **params}), model_context(plugins))


ALL = [(c, p) for c in COLOURS for p in PLACES]


def test_registered_with_caption_capability(plugins):
    spec = plugins.get("models", "captioner")
    assert spec.capabilities == frozenset({"caption"})
    assert spec.plugin == "model.captioner"


def test_gradient_reaches_encoder_attention_and_decoder(plugins):
    model = make_model(plugins)
    loss, logs = model.loss(make_batch(ALL[:4]))
    assert loss.ndim == 0 and torch.isfinite(loss) and logs["loss"] == pytest.approx(float(loss.detach()))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for part in ("encoders.image.body.0.weight", "net.attention.score.weight", "net.attention.feat.weight",
                 "net.cell.weight_ih", "net.init_h.weight", "net.out.weight"):
        assert dict(model.named_parameters())[part].grad.abs().sum() > 0, part


def test_teacher_forcing_targets_put_eos_after_the_last_real_token(plugins):
    model = make_model(plugins)
    tokens = torch.tensor([[5, 0, 6, 0], [2, 3, 4, 7]])
    mask = torch.tensor([[True, False, True, False], [True, True, True, True]])  # padding in the middle
    inp, tgt = model.net.targets(tokens, mask)
    bos, eos = len(VOCAB), len(VOCAB) + 1
    assert inp.tolist() == [[bos, 5, 6, 0, 0], [bos, 2, 3, 4, 7]]
    assert tgt.tolist() == [[5, 6, eos, -100, -100], [2, 3, 4, 7, eos]]


def test_beam_one_equals_greedy(plugins):
    model = make_model(plugins).eval()
    batch = make_batch(ALL)
    feats = model._features(batch)
    greedy = model.net.greedy(feats, max_len=7)
    beam1 = model.net.beam_search(feats, max_len=7, beam_size=1)
    assert beam1.ids == greedy.ids
    assert beam1.scores == pytest.approx(greedy.scores, abs=1e-5)
    for a, b in zip(beam1.attention, greedy.attention, strict=True):
        torch.testing.assert_close(a, b)
    assert any(len(ids) > 0 for ids in greedy.ids)


def test_overfits_a_tiny_set_and_captions_correctly(plugins):
    model = make_model(plugins)
    batch = make_batch(ALL)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    first = float(model.loss(batch)[0].detach())
    for _ in range(80):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    final = float(model.loss(batch)[0].detach())
    assert final < 0.15 * first, (first, final)
    expected = [f"a {c} square on the {p}" for c, p in ALL]
    greedy = model.caption(batch, max_len=10)
    assert sum(g == e for g, e in zip(greedy, expected, strict=True)) >= len(ALL) - 1, greedy
    beam = model.caption(batch, max_len=10, beam_size=3)
    assert sum(b == e for b, e in zip(beam, expected, strict=True)) >= len(ALL) - 1, beam

    # Attention maps: one [h, w] map per generated word, each a distribution over the grid.
    interp = model.interpretation()
    maps = interp["attention"]
    assert len(maps) == len(ALL)
    for ids, m in zip(interp["token_ids"], maps, strict=True):
        assert m.shape == (len(ids), 4, 4)
        torch.testing.assert_close(m.flatten(1).sum(1), torch.ones(len(ids)))


def test_missing_image_is_excluded_from_the_loss_and_decodes_without_nan(plugins):
    model = make_model(plugins)
    batch = make_batch(ALL[:3])
    batch.inputs["image"].mask[2] = False
    batch.inputs["image"].data[2] = float("nan")
    model.eval()
    loss, _ = model.loss(batch)
    torch.testing.assert_close(loss, model.loss(make_batch(ALL[:2]))[0])
    assert isinstance(model.caption(batch)[2], str)


def test_bad_tokens_and_bad_config_are_platform_errors(plugins):
    model = make_model(plugins)
    batch = make_batch(ALL[:2])
    batch.inputs["caption"].data[0, 0] = 99
    with pytest.raises(DataError, match="token id 99 is outside the vocabulary"):
        model.loss(batch)
    with pytest.raises(ConfigError, match="model.params: hidden must be > 0"):
        make_model(plugins, hidden=0)
    ctx = ModelContext(plugins=plugins, fields={"image": FieldInfo("image", "image"), "caption": FieldInfo("caption", "text")})
    with pytest.raises(ConfigError, match="vocab"):
        build_model(ModelConfig(name="captioner"), ctx)


def test_generative_models_still_register_after_their_modules_were_imported():
    """Regression: a plugin object named like its submodule is replaced by it on import."""
    import polymodal_plugins.models.captioner  # noqa: F401
    import polymodal_plugins.models.text_to_image  # noqa: F401

    fresh = build_plugin_manager(PluginSettings(), entry_points=True)
    assert {"captioner", "text-to-image"} <= set(fresh.registry("models").names())


def test_checkpoint_round_trip_gives_identical_captions_and_attention(plugins, tmp_path):
    from polymodal.checkpoint import load_model, save_checkpoint

    model = make_model(plugins).eval()
    batch = make_batch(ALL)
    before = model.caption_ids(batch, max_len=6, beam_size=2)
    experiment = {"data": {"dataset": "toy"}, "model": {"name": "captioner", "params": SMALL}}
    save_checkpoint(tmp_path / "ckpt", model, experiment=experiment, context=model_context(plugins).to_json())
    loaded = load_model(tmp_path / "ckpt", plugins)
    after = loaded.caption_ids(batch, max_len=6, beam_size=2)
    assert after.ids == before.ids and after.scores == pytest.approx(before.scores, abs=0)
    assert loaded.caption(batch) == model.caption(batch)
