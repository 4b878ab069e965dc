"""``hf-vlm``: tiny random LLaVA and Qwen2-VL saved locally and reloaded offline (HF_HUB_OFFLINE=1).

Replies are gibberish; what is checked is every path: chat-template prompts
with the image placeholder, left padding, batch of N equals N single calls
under greedy decoding, beam search, dtype, device_map, answer likelihoods
and multiple choice by letter and by likelihood.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import models_testkit as kit
from polymodal import ConfigError
from polymodal.batch import Batch, ModalityBatch
from polymodal.experiment import experiment_from_dict
from polymodal.model_api import FieldInfo, ModelContext, build_model

from vlm_testkit import save_tiny_llava, save_tiny_qwen2_vl

torch.set_num_threads(1)
ARCHS = {"llava": save_tiny_llava, "qwen2-vl": save_tiny_qwen2_vl}


@pytest.fixture(scope="module", params=sorted(ARCHS))
def vlm_dir(request, tmp_path_factory):
    return ARCHS[request.param](tmp_path_factory.mktemp(request.param))


def make(folder, **params):
    cfg = experiment_from_dict({"data": {"dataset": "x"},
                                "model": {"name": "hf-vlm", "params": {"model": str(folder), "max_new_tokens": 4,
                                                                       **params}}}, "vlm.toml")
    ctx = ModelContext(kit.plugins(), {"image": FieldInfo("image", "image"), "text": FieldInfo("text", "text")},
                       {}, "vlm.toml")
    return build_model(cfg.model, ctx)


def vqa_batch(n=3, questions=None):
    g = torch.Generator().manual_seed(0)
    qs = questions or ["What colour is it?", "How many shapes?", "Is there a circle in the picture at all?"][:n]
    return Batch({"image": ModalityBatch(torch.rand(n, 3, 20, 24, generator=g), torch.ones(n, dtype=torch.bool)),
                  "text": ModalityBatch(torch.zeros(n, 4, dtype=torch.long), torch.ones(n, 4, dtype=torch.bool),
                                        {"text": qs})}, {}, list(range(n)))


def test_capabilities_prompt_and_left_padding(vlm_dir):
    model = make(vlm_dir)
    assert model.capabilities == frozenset({"answer", "caption"})
    prompt = model.prompt("What is it?")
    image_token = getattr(model.processor, "image_token", None)
    assert image_token and image_token in prompt and prompt.index(image_token) < prompt.index("What is it?")
    assert model.tokenizer.padding_side == "left"
    b = vqa_batch()
    inputs = model._inputs(model.images(b), [model.prompt(q) for q in b.inputs["text"].meta["text"]])
    mask = inputs["attention_mask"]
    assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any()  # padding on the left only


def test_batch_equals_single_calls_under_greedy(vlm_dir):
    model = make(vlm_dir, batch_size=3)
    b = vqa_batch()
    batched = model.answer(b)
    assert len(batched) == 3 and all(isinstance(r, str) for r in batched)
    images, qs = model.images(b), b.inputs["text"].meta["text"]
    singles = [model.generate_replies([images[i]], [qs[i]])[0] for i in range(3)]
    assert batched == singles
    # beam search and captions run and give one string per sample
    assert len(model.generate_replies(images[:2], qs[:2], num_beams=2)) == 2
    assert len(model.caption(b, max_len=3)) == 3


def test_answer_logprob_and_multiple_choice(vlm_dir):
    model = make(vlm_dir)
    b = vqa_batch(2)
    images = model.images(b)
    lp = model.answer_logprob(images, ["Q?", "Another question?"], ["red", "two blue"])
    assert lp.shape == (2,) and (lp < 0).all()
    alone = model.answer_logprob(images[1:], ["Another question?"], ["two blue"])
    torch.testing.assert_close(lp[1:], alone, atol=1e-4, rtol=1e-4)
    options = [["red", "blue", "green"], ["one", "two", "three", "four"]]
    picked, replies = model.choose(images, ["Colour?", "Count?"], options, mode="likelihood")
    assert all(p is not None and 0 <= p < len(o) for p, o in zip(picked, options))
    scores = model.answer_logprob([images[0]] * 3, [model.choice_text("Colour?", options[0])] * 3,
                                  ["A. red", "B. blue", "C. green"])
    assert picked[0] == int(scores.argmax()) and replies[0] == ["A. red", "B. blue", "C. green"][picked[0]]
    picked, replies = model.choose(images, ["Colour?", "Count?"], options, mode="generate")
    assert len(picked) == len(replies) == 2  # gibberish replies: None (an extraction failure) is allowed


def test_dtype_and_device_map(vlm_dir):
    model = make(vlm_dir, dtype="bfloat16", device_map={"": "cpu"})  # a CPU-only map, through accelerate
    assert {(p.dtype, p.device.type) for p in model.vlm.parameters()} == {(torch.bfloat16, "cpu")}
    lp = model.answer_logprob(model.images(vqa_batch(1)), ["Q?"], ["red"])
    assert lp.dtype == torch.float32 and torch.isfinite(lp).all()


def test_one_line_errors(vlm_dir, tmp_path):
    with pytest.raises(ConfigError, match="cannot load an image-text-to-text model"):
        make(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="dtype"):
        make(vlm_dir, dtype="float8")


def test_remote_code_is_off_unless_opted_in(vlm_dir, monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoModelForImageTextToText.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", classmethod(spy))
    make(vlm_dir)
    make(vlm_dir, trust_remote_code=True)
    assert [k["trust_remote_code"] for k in seen] == [False, True]
    assert all(k["local_files_only"] is True for k in seen)


def test_torch_pixel_path_equals_the_processor(vlm_dir):
    """The differentiable twin gives the processor's own pixel_values (and grid) on clean images."""
    model = make(vlm_dir)
    path, image_processor = model.pixels, model.processor.image_processor
    assert model.differentiable_pixels, path
    g = torch.Generator().manual_seed(1)
    for shape in [(3, 20, 24), (3, 30, 17), (3, 16, 16)]:
        images = [torch.rand(*shape, generator=g) for _ in range(2)]
        ours = path.values([path.resize(x) for x in images])
        ref = image_processor(images=images, return_tensors="pt", do_rescale=False)
        assert ours.keys() == {k for k in ref if k in ("pixel_values", "image_grid_thw")}
        assert float((ours["pixel_values"] - ref["pixel_values"]).abs().max()) < 1e-5
        if "image_grid_thw" in ref:
            assert torch.equal(ours["image_grid_thw"], ref["image_grid_thw"].long())
    # the model's inputs carry the twin's pixel_values, and the processor places the same image tokens
    b = vqa_batch(2)
    prompts = [model.prompt(q) for q in b.inputs["text"].meta["text"]]
    ours = model._inputs(model.images(b), prompts)
    ref = model.processor(images=list(b.inputs["image"].data), text=prompts, padding=True, return_tensors="pt",
                          do_rescale=False)
    assert torch.equal(ours["input_ids"], ref["input_ids"])
    assert float((ours["pixel_values"] - ref["pixel_values"]).abs().max()) < 1e-5


def test_pgd_on_the_answer_likelihood_reaches_the_pixels(vlm_dir):
    from polymodal.perturb import PerturbationSpace

    model = make(vlm_dir)
    b = vqa_batch(2)
    x = b.inputs["image"].data
    qs, answers = b.inputs["text"].meta["text"], ["red", "two"]
    pixels = x.clone().requires_grad_(True)
    model.answer_logprob(list(pixels), qs, answers, grad=True).sum().backward()
    assert pixels.grad is not None and float(pixels.grad.abs().sum()) > 0
    eps = 8 / 255
    space = PerturbationSpace(x.shape, 1.0, None, lower=-x, upper=1 - x)
    pgd = kit.plugins().build("attacks", "pgd", norm="linf", steps=3)
    loss = lambda d: -model.answer_logprob(list(x + d["image"]), qs, answers, grad=True)  # noqa: E731
    delta = pgd(loss, {"image": space}, epsilon=eps, generator=torch.Generator().manual_seed(0))["image"]
    assert float(delta.abs().max()) <= eps + 1e-7 and ((x + delta) >= 0).all() and ((x + delta) <= 1).all()
    with torch.no_grad():
        clean, adv = model.answer_logprob(list(x), qs, answers), model.answer_logprob(list(x + delta), qs, answers)
    assert (adv < clean).all()  # the answer became less likely for every sample


def test_reply_attention_maps_onto_the_image_patch_grid(vlm_dir):
    model = make(vlm_dir, max_new_tokens=3)
    b = vqa_batch(2)
    replies = model.answer(b)
    info = model.interpretation()
    assert info["method"] == "language_model_attention" and len(info["attention"]) == 2
    for image, reply, maps, ids, tokens, mass in zip(model.images(b), replies, info["attention"], info["token_ids"],
                                                     info["tokens"], info["image_mass"]):
        inputs = model._inputs([image], [model.prompt("x")])
        n_image = int((inputs["input_ids"] == model.processor.image_token_id).sum())
        if "image_grid_thw" in inputs:  # Qwen2-VL: merged patches, 20x24 -> 8x16 pixels -> 2x4 patches -> 1x2 tokens
            t, h, w = inputs["image_grid_thw"][0].tolist()
            grid = (t * h // 2, w // 2)
        else:  # LLaVA: the vision tower's 16/8 x 16/8 patch grid
            grid = (2, 2)
        # the grid's part of the image: LLaVA resizes 20x24 to 16x19 and crops columns 1..17; Qwen2-VL keeps it all
        box = info["image_box"][0]
        assert box == ((0.0, 1 / 19, 1.0, 17 / 19) if "image_grid_thw" not in inputs else (0.0, 0.0, 1.0, 1.0))
        assert grid[0] * grid[1] == n_image
        assert maps.shape == (len(ids), *grid) and len(tokens) == len(ids) == len(mass)
        assert (maps >= 0).all() and all(0 < m <= 1 + 1e-5 for m in mass)
        torch.testing.assert_close(maps.flatten(1).sum(1), torch.tensor(mass), atol=1e-5, rtol=1e-5)
        assert model.tokenizer.decode(ids, skip_special_tokens=True).strip() == reply  # the generated tokens
    assert model.vlm.config._attn_implementation != "eager"  # the eager switch is undone


def test_pixel_path_refuses_what_it_cannot_reproduce():
    """No silent twin: tiling processors get a reason, and a twin that disagrees with the processor is refused."""
    from types import SimpleNamespace

    from polymodal_plugins.models.vlm_pixels import PixelPath

    tiling = SimpleNamespace(do_image_splitting=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    assert "do_image_splitting" in PixelPath.from_processor(tiling)

    class Fake:  # declares fixed-size facts; resizes like torchvision, then normalises with ``shift``
        image_mean, image_std, do_normalize, size, resample = [0.5] * 3, [0.5] * 3, True, {"height": 8, "width": 8}, 3

        def __init__(self, shift):
            self.shift = shift

        def __call__(self, images, do_resize=True, **kwargs):
            x = torch.stack([torch.nn.functional.interpolate(i[None], size=(8, 8), mode="bicubic", antialias=True)[0]
                             if do_resize else i for i in images])
            return {"pixel_values": (x - self.shift) / 0.5}

    reason = PixelPath.checked(Fake(0.25))  # declares a mean of 0.5 but subtracts 0.25
    assert isinstance(reason, str) and "differs from Fake" in reason
    assert isinstance(PixelPath.checked(Fake(0.5)), PixelPath)
    # the resample filter is a fact too: bilinear and nearest are followed (and checked on a resized probe),
    # Lanczos is refused by name
    from transformers import CLIPImageProcessor, SiglipImageProcessor

    assert PixelPath.checked(SiglipImageProcessor(size={"height": 16, "width": 16}, resample=2)).mode == "bilinear"
    assert PixelPath.checked(CLIPImageProcessor(size={"shortest_edge": 16}, crop_size=16, resample=0)).mode \
        == "nearest-exact"
    assert "PIL filter 1" in PixelPath.checked(SiglipImageProcessor(resample=1))
