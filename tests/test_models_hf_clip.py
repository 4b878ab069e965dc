"""``hf-clip``: a transformers CLIPModel saved with save_pretrained and reloaded offline."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F

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


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    """A tiny random SiglipModel with a byte-level tokenizer and a fixed-size image processor, saved locally."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    from vlm_testkit import _tokenizer

    d = tmp_path_factory.mktemp("tinysiglip")
    tok = _tokenizer(["<pad>", "</s>"], "<pad>", "</s>", "")
    cfg = SiglipConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, projection_size=16),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=16, patch_size=8))
    torch.manual_seed(0)
    model = SiglipModel(cfg)
    with torch.no_grad():  # the random init leaves the bias at 0 and the scale at 1: make both matter
        model.logit_bias.fill_(-2.0)
        model.logit_scale.fill_(1.5)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    SiglipImageProcessor(size={"height": 16, "width": 16}).save_pretrained(d)
    return d


def test_siglip_scores_are_sigmoid_logits_with_the_bias(siglip_dir):
    """SigLIP through hf-clip: the processor's pixels, fixed-length text, logits with the bias, sigmoid loss."""
    from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel

    model, _, _ = make(siglip_dir, class_prompts=["a red thing", "a blue thing"])
    model.eval()
    assert model.pair_activation == "sigmoid" and model.text_padding == "max_length" and model.max_length == 16
    b = clip_batch()
    ref = SiglipModel.from_pretrained(siglip_dir, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(siglip_dir, local_files_only=True)
    pixels = AutoImageProcessor.from_pretrained(siglip_dir)(images=list(b.inputs["image"].data), do_rescale=False,
                                                            return_tensors="pt")["pixel_values"]
    texts = ["a red thing", "a blue thing"]
    with torch.no_grad():
        out = ref(input_ids=tok(texts, padding="max_length", max_length=16, return_tensors="pt")["input_ids"],
                  pixel_values=pixels)
        logits = model.predict(b)
        torch.testing.assert_close(model.embed(b, "image"), F.normalize(out.image_embeds, dim=-1), atol=1e-5,
                                   rtol=1e-4)
    # the zero-shot logit is scale * cos + bias (what transformers' logits_per_image holds), not the bare cosine
    torch.testing.assert_close(logits, out.logits_per_image, atol=1e-5, rtol=1e-4)
    assert float(ref.logit_bias.detach()) == -2.0 and torch.sigmoid(logits).max() < 0.5  # a bias of -2 pushes pairs to "no"
    pair = torch.stack([b.inputs["image"].data[0]] * 2)
    batch = Batch({"image": ModalityBatch(pair, torch.ones(2, dtype=torch.bool)),
                   "text": ModalityBatch(torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool),
                                         {"text": texts})}, {}, [0, 1])
    loss, _ = model.loss(batch)
    with torch.no_grad():
        ref_loss = ref(input_ids=tok(texts, padding="max_length", max_length=16, return_tensors="pt")["input_ids"],
                       pixel_values=pixels[[0, 0]], return_loss=True).loss
    torch.testing.assert_close(loss.detach(), ref_loss, atol=1e-5, rtol=1e-4)


def test_siglip_runs_the_retrieval_and_zero_shot_axes(siglip_dir, tmp_path):
    from axes_models import build, context

    from polymodal_plugins.axes.retrieval import RetrievalAxis
    from polymodal_plugins.axes.zero_shot import ZeroShotAxis

    model, data = build({"name": "hf-clip", "params": {"model": str(siglip_dir)}}, samples=4)
    rows = list(RetrievalAxis().run(model, data, context(tmp_path, "retrieval", limit=4)))
    recalls = [r for r in rows if r.metric.startswith("recall") or "recall" in r.metric]
    assert recalls and all(0 <= r.value <= 1 for r in recalls)
    zs = list(ZeroShotAxis(target="color").run(model, data, context(tmp_path, "zero-shot", limit=4)))
    acc = [r for r in zs if r.metric == "accuracy"]
    assert acc and all(0 <= r.value <= 1 for r in acc)
