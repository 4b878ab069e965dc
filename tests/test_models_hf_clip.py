"""``hf-clip``: a transformers CLIPModel saved with save_pretrained and reloaded offline."""

from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import models_testkit as kit
from polymodal import ConfigError
from polymodal.batch import Batch, ModalityBatch
from polymodal.checkpoint import load_model, save_checkpoint
from polymodal.experiment import experiment_from_dict, to_dict
from polymodal.model_api import FieldInfo, ModelContext, TargetInfo, build_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    d = tmp_path_factory.mktemp("tinyclip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), pad_token="<|endoftext|>")
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=16, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def make(clip_dir, **params):
    cfg = experiment_from_dict({"data": {"dataset": "x"},
                                "model": {"name": "hf-clip", "params": {"model": str(clip_dir), **params}}}, "clip.toml")
    ctx = ModelContext(kit.plugins(), {"image": FieldInfo("image", "image"), "text": FieldInfo("text", "text")},
                       {"label": TargetInfo("label", 2, ["red", "blue"])}, "clip.toml")
    return build_model(cfg.model, ctx), cfg, ctx


def clip_batch(n=3):
    g = torch.Generator().manual_seed(0)
    texts = ["a red circle", "a blue square", "green cross"][:n]
    return Batch({"image": ModalityBatch(torch.rand(n, 3, 20, 20, generator=g), torch.ones(n, dtype=torch.bool)),
                  "text": ModalityBatch(torch.zeros(n, 4, dtype=torch.long), torch.ones(n, 4, dtype=torch.bool),
                                        {"text": texts})}, {}, list(range(n)))


def test_embeddings_match_transformers_directly(clip_dir):
    from transformers import AutoTokenizer, CLIPModel

    model, _, _ = make(clip_dir)
    model.eval()
    b = clip_batch()
    zi, zt = model.embed(b, "image"), model.embed(b, "text")
    assert zi.shape == zt.shape == (3, 8)
    torch.testing.assert_close(zt.norm(dim=-1), torch.ones(3))
    ref = CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(clip_dir, local_files_only=True)
    t = tok(["a red circle", "a blue square", "green cross"], padding=True, return_tensors="pt")
    out = ref(input_ids=t["input_ids"], attention_mask=t["attention_mask"],
              pixel_values=torch.nn.functional.interpolate(b.inputs["image"].data, size=(16, 16), mode="bicubic")
              .clamp(0, 1).sub(model.mean).div(model.std))
    torch.testing.assert_close(zt, torch.nn.functional.normalize(out.text_embeds, dim=-1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(zi, torch.nn.functional.normalize(out.image_embeds, dim=-1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.logit_scale(), ref.logit_scale.exp())


def test_zero_shot_prompts_from_labels_and_loss(clip_dir):
    model, _, _ = make(clip_dir, prompt="a {} thing")
    assert model.class_prompts == ["a red thing", "a blue thing"]
    logits = model.predict(clip_batch())
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
    loss, _ = model.loss(clip_batch())
    loss.backward()
    assert model.clip.logit_scale.grad is not None


def test_checkpoint_round_trip_and_errors(clip_dir, tmp_path):
    model, cfg, ctx = make(clip_dir)
    model.eval()
    save_checkpoint(tmp_path / "ck", model, experiment=to_dict(cfg), context=ctx.to_json())
    loaded = load_model(tmp_path / "ck", ctx.plugins)
    b = clip_batch()
    assert torch.equal(model.embed(b, "image"), loaded.embed(b, "image"))
    with pytest.raises(ConfigError, match="model.params.model: cannot load CLIP"):
        make(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="model.params.colour: unknown key; valid keys: class_prompts"):
        make(clip_dir, colour=1)
    no_text = Batch({"image": clip_batch().inputs["image"],
                     "text": ModalityBatch(torch.zeros(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.bool))})
    from polymodal import PolymodalError

    with pytest.raises(PolymodalError, match="raw strings"):
        model.embed(no_text, "text")
