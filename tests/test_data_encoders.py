"""Every encoder family runs forward on a real batch; weights, freezing, masks, offline HF/timm models."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from polymodal import get_plugins
from polymodal.batch import ModalityBatch
from polymodal.data import build_modalities, fit_modalities, make_loader
from polymodal.errors import ConfigError, DataError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shapes_batch():
    plugins = get_plugins()
    ds = plugins.build("datasets", "shapes", split="train", num_samples=24, seed=3)
    mods = build_modalities(ds.fields)
    fit_modalities(mods, ds)
    batch = next(iter(make_loader(ds, mods, batch_size=6)))
    return plugins, mods, batch


def _check(features, b, dim):
    assert features.tokens.dim() == 3 and features.tokens.shape[0] == b and features.tokens.shape[2] == dim
    assert features.mask.shape == features.tokens.shape[:2] and features.mask.dtype == torch.bool
    assert torch.isfinite(features.tokens).all()


def _with_missing(mb: ModalityBatch, row: int = 1) -> ModalityBatch:
    mask = mb.mask.clone()
    mask[row] = False
    data = mb.data.clone()
    data[row] = 0
    return ModalityBatch(data, mask, mb.meta)


def test_small_encoders_forward_and_missing_rows(shapes_batch):
    plugins, mods, batch = shapes_batch
    torch.manual_seed(0)
    cases = {
        "image": plugins.build("encoders", "cnn", output_dim=48),
        "text": plugins.build("encoders", "gru", vocab_size=mods["text"].vocab_size, output_dim=40),
        "text_zh": plugins.build("encoders", "transformer", vocab_size=mods["text_zh"].vocab_size, dim=32),
        "audio": plugins.build("encoders", "audio", in_features=mods["audio"].feature_dim),
        "video": plugins.build("encoders", "video", frame_params={"output_dim": 24}, pooling="attention"),
    }
    for field, enc in cases.items():
        enc.eval()
        feats = enc(_with_missing(batch.inputs[field]))
        _check(feats, 6, enc.output_dim)
        assert not feats.mask[1].any(), field  # a missing modality stays missing
        assert feats.mask[0].any(), field
    assert cases["image"](batch.inputs["image"]).tokens.shape[1] == 8 * 8  # 32 px -> 8x8 spatial tokens


def test_gru_output_independent_of_padding(shapes_batch):
    plugins, mods, batch = shapes_batch
    enc = plugins.build("encoders", "gru", vocab_size=mods["text"].vocab_size).eval()
    mb = batch.inputs["text"]
    n = int(mb.mask[0].sum())
    alone = enc(ModalityBatch(mb.data[:1, :n], mb.mask[:1, :n])).tokens
    padded = enc(mb).tokens[:1, :n]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_video_mean_pooling_ignores_missing_frames():
    enc = get_plugins().build("encoders", "video", frame_params={"output_dim": 16}, pooling="mean").eval()
    x = torch.randn(2, 4, 3, 16, 16)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    a = enc(ModalityBatch(x, mask)).tokens[0]
    x2 = x.clone()
    x2[0, 2:] = torch.randn(2, 3, 16, 16)  # change only the masked-out frames
    b = enc(ModalityBatch(x2, mask)).tokens[0]
    assert torch.allclose(a, b, atol=1e-6)


def test_freeze_and_safetensors_roundtrip(tmp_path):
    plugins = get_plugins()
    enc = plugins.build("encoders", "cnn", output_dim=16)
    path = enc.save_weights(tmp_path / "cnn.safetensors")
    other = plugins.build("encoders", "cnn", output_dim=16, weights=str(path), freeze=True)
    assert all(not p.requires_grad for p in other.parameters())
    for (k, v), (k2, v2) in zip(enc.state_dict().items(), other.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    wrong = plugins.build("encoders", "cnn", output_dim=32)
    with pytest.raises(DataError, match=r"shape mismatch: .*proj.weight \(file \(16, 128, 1, 1\), model \(32"):
        wrong.load_weights(path)
    (tmp_path / "trunc.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a valid safetensors"):
        enc.load_weights(tmp_path / "trunc.safetensors")


def test_timm_encoder_local_pretrained_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    plugins = get_plugins()
    kwargs = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}
    src = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **kwargs)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "vit.safetensors"))
    enc = plugins.build("encoders", "timm", model_name="vit_tiny_patch16_224",
                        pretrained_file=str(tmp_path / "vit.safetensors"), model_kwargs=kwargs).eval()
    assert torch.equal(enc.model.pos_embed, src.pos_embed)  # weights came from the local file
    cfg = enc.preprocess_config()
    image = get_plugins().build("modalities", "image").configure(cfg)
    assert image.size == (32, 32)
    batch = image.collate([image.preprocess(torch.rand(3, 40, 40)), None])
    feats = enc(batch)
    _check(feats, 2, 32)
    assert feats.tokens.shape[1] == 1 + 16  # class token + 4x4 patches
    pooled = plugins.build("encoders", "timm", model_name="resnet18", model_kwargs={}, tokens="pooled")
    assert pooled(batch).tokens.shape == (2, 1, 512)
    with pytest.raises(ConfigError, match="unknown architecture 'resnet1000'"):
        plugins.build("encoders", "timm", model_name="resnet1000")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("bert")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "blue", "circle", "square"]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(str(d / "vocab.txt")).save_pretrained(d)
    cfg = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(d)
    return str(d)


def test_hf_text_encoder_and_tokenizer_offline(tiny_bert):
    plugins = get_plugins()
    enc = plugins.build("encoders", "hf-text", model=tiny_bert, pooling="mean").eval()
    assert enc.output_dim == 32
    text = plugins.build("modalities", "text").configure(enc.preprocess_config())
    assert not text.needs_fit and text.vocab_size == 10
    ids = text.preprocess("a red circle")
    assert ids.tolist() == [2, 5, 6, 8, 3]  # [CLS] a red circle [SEP]
    batch = text.collate([ids, text.preprocess("blue"), None])
    feats = enc(batch)
    _check(feats, 3, 32)
    assert feats.mask[:, 0].tolist() == [True, True, False]
    tokens = plugins.build("encoders", "hf-text", model=tiny_bert, pooling="tokens").eval()(batch)
    assert tokens.tokens.shape[1] == 5 and torch.equal(tokens.mask, batch.mask)
    with pytest.raises(ConfigError, match="cannot load"):
        plugins.build("encoders", "hf-text", model=str(tiny_bert) + "-nope")


def test_hf_vision_encoder_local_vit(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64)
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.5, 0.5]
                      ).save_pretrained(tmp_path)
    plugins = get_plugins()
    enc = plugins.build("encoders", "hf-vision", model=str(tmp_path), pooling="cls").eval()
    image = plugins.build("modalities", "image").configure(enc.preprocess_config())
    assert image.size == (32, 32) and image.mean == (0.1, 0.2, 0.3)
    feats = enc(image.collate([image.preprocess(torch.rand(3, 32, 32)), None]))
    _check(feats, 2, 32)
    assert feats.tokens.shape[1] == 1 and feats.mask[:, 0].tolist() == [True, False]
