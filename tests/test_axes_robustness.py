"""robustness.noise / robustness.adversarial axes, corruptions and attack plugins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import polymodal
from polymodal.data import AudioClip
from polymodal.errors import ConfigError
from polymodal.evaluation import AxisContext
from polymodal.experiment import experiment_from_dict
from polymodal_plugins.attacks.budget import PerturbationSpace, per_sample_norm
from polymodal_plugins.axes.corruption import available, get_corruption, sample_rng
from polymodal_plugins.axes.robustness_summary import summarise
from polymodal_plugins.training.trainer import Trainer, prepare

# Built through the plugin manager: importing polymodal_plugins.datasets.shapes directly shadows the
# package's ``shapes`` manifest attribute with the submodule, and the dataset then fails to register.
SHAPES = polymodal.get_plugins().build("datasets", "shapes", split="test", num_samples=4, image_size=32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


# -- corruptions ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gaussian_noise", "blur", "jpeg", "occlusion", "contrast"])
def test_image_corruptions_are_deterministic_and_psnr_falls_with_severity(name: str) -> None:
    sample = SHAPES[0]
    fn = get_corruption("rgb", name)
    outs = [fn(sample["image"], s, sample_rng(7, sample["id"], "image", name)) for s in range(1, 6)]
    again = fn(sample["image"], 3, sample_rng(7, sample["id"], "image", name))
    assert np.array_equal(outs[2], again)
    assert outs[0].dtype == np.uint8 and outs[0].shape == sample["image"].shape
    psnr = [_psnr(sample["image"], o) for o in outs]
    assert all(a >= b for a, b in zip(psnr, psnr[1:])), psnr
    assert psnr[0] > psnr[-1]
    other = fn(sample["image"], 3, sample_rng(8, sample["id"], "image", name))
    if name in ("gaussian_noise", "occlusion"):  # random corruptions depend on the seed
        assert not np.array_equal(other, again)


def test_audio_corruptions_hit_their_snr_and_grow_with_severity() -> None:
    clip = SHAPES[1]["audio"]
    rng = lambda: sample_rng(0, "a", "audio", "gaussian_noise")  # noqa: E731
    noisy = get_corruption("waveform", "gaussian_noise")(clip, 3, rng())  # 10 dB
    noise = noisy.samples - clip.samples
    snr = 10 * np.log10(np.mean(clip.samples ** 2) / np.mean(noise ** 2))
    assert abs(snr - 10.0) < 0.5
    for name in ("gaussian_noise", "clipping", "time_mask"):
        fn = get_corruption("waveform", name)
        errs = [float(np.mean((fn(clip, s, sample_rng(0, "a", "audio", name)).samples - clip.samples) ** 2))
                for s in range(1, 6)]
        assert all(a <= b for a, b in zip(errs, errs[1:])), (name, errs)
        assert isinstance(fn(clip, 1, sample_rng(0, "a", "audio", name)), AudioClip)


def test_text_corruptions_monotone_and_deterministic() -> None:
    text = "a small red circle moving left across the whole picture today"
    drops = [get_corruption("text", "word_dropout")(text, s, sample_rng(1, "t", "text", "word_dropout"))
             for s in range(1, 6)]
    lengths = [len(d.split()) for d in drops]
    assert all(a >= b for a, b in zip(lengths, lengths[1:])) and lengths[-1] >= 1 and lengths[-1] < 11
    for d in drops:  # dropout keeps the order of the surviving words
        words = text.split()
        assert [w for w in words if w in d.split()] == d.split()
    shuffled = get_corruption("text", "word_shuffle")(text, 5, sample_rng(1, "t", "text", "word_shuffle"))
    assert sorted(shuffled.split()) == sorted(text.split()) and shuffled != text
    typo = get_corruption("text", "typos")
    assert typo(text, 5, sample_rng(1, "t", "text", "typos")) == typo(text, 5, sample_rng(1, "t", "text", "typos"))
    assert typo(text, 5, sample_rng(1, "t", "text", "typos")) != text


def test_paraphrase_templates_per_severity_seeded_and_on_request_only() -> None:
    from polymodal_plugins.axes.corruption import available
    from polymodal_plugins.axes.text_corruptions import PARAPHRASES

    question = "What colour is the car?"
    para = get_corruption("text", "paraphrase")
    out = [para(question, s, sample_rng(3, "q1", "text", "paraphrase")) for s in range(1, 6)]
    assert out == [para(question, s, sample_rng(3, "q1", "text", "paraphrase")) for s in range(1, 6)]  # seeded
    for s, text in enumerate(out, 1):  # each severity's own templates, the question kept word for word
        assert any(text == t.format(text=question, lower="what colour is the car?") for t in PARAPHRASES[s - 1])
        assert "colour is the car?" in text
    lengths = [sum(len(t) for t in ts) / len(ts) for ts in PARAPHRASES]
    assert lengths == sorted(lengths)  # more wording at each severity
    picks = {para(question, 5, sample_rng(3, f"q{i}", "text", "paraphrase")) for i in range(30)}
    assert len(picks) == len(PARAPHRASES[4])  # the seeded draw spreads samples over the templates
    assert "paraphrase" not in available("text") and "typos" in available("text")  # only where a suite names it


def test_video_corruptions_keep_length_and_frames() -> None:
    video = SHAPES[2]["video"]
    dropped = get_corruption("frames", "frame_drop")(video, 5, sample_rng(0, "v", "video", "frame_drop"))
    assert dropped.shape == video.shape and np.array_equal(dropped[0], video[0])
    assert any(np.array_equal(dropped[i], dropped[i - 1]) for i in range(1, len(video)))
    shuffled = get_corruption("frames", "frame_shuffle")(video, 5, sample_rng(0, "v", "video", "frame_shuffle"))
    assert sorted(map(bytes, shuffled.reshape(len(video), -1))) == sorted(map(bytes, video.reshape(len(video), -1)))
    assert not np.array_equal(shuffled, video)


def test_unknown_corruption_is_a_config_error_with_suggestion() -> None:
    assert set(available("rgb")) == {"gaussian_noise", "blur", "jpeg", "occlusion", "contrast"}
    with pytest.raises(ConfigError, match="did you mean.*gaussian_noise"):
        get_corruption("rgb", "gaussian_nois")
    with pytest.raises(ConfigError, match="severity"):
        get_corruption("rgb", "blur")(SHAPES[0]["image"], 6, sample_rng(0, 0, "image", "blur"))


def test_summary_figures() -> None:
    s = summarise(0.8, [1, 2], [0.8, 0.8])
    assert s.auc_relative == pytest.approx(1.0) and s.relative_corruption_error == pytest.approx(0.0)
    s = summarise(1.0, [1], [0.0])  # triangle of area 0.5 out of 1
    assert s.auc_relative == pytest.approx(0.5) and s.ce_ratio is None
    assert summarise(0.9, [1, 2], [0.8, 0.6]).ce_ratio == pytest.approx(0.3 / 0.1)


# -- attacks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,norm", [("fgsm", "linf"), ("fgsm", "l2"), ("pgd", "linf"), ("pgd", "l2")])
def test_attacks_stay_inside_ball_box_and_mask_and_raise_the_loss(name: str, norm: str) -> None:
    plugins = polymodal.get_plugins()
    attack = plugins.build("attacks", name, norm=norm) if name == "fgsm" else \
        plugins.build("attacks", name, norm=norm, steps=5, random_start=True)
    torch.manual_seed(0)
    x = torch.rand(6, 3, 4, 4)
    w = torch.randn(3 * 16)
    mask = torch.ones(6, 1, 1, 1)
    mask[5] = 0
    space = PerturbationSpace(x.shape, 1.0, mask, lower=-x, upper=1 - x)
    loss = lambda d: ((x + d["img"]).flatten(1) @ w)  # noqa: E731
    eps = 0.1
    delta = attack(loss, {"img": space}, epsilon=eps, generator=torch.Generator().manual_seed(1))["img"]
    assert (per_sample_norm(delta, norm) <= eps + 1e-5).all()
    assert ((x + delta) >= -1e-6).all() and ((x + delta) <= 1 + 1e-6).all()
    assert torch.count_nonzero(delta[5]) == 0
    assert (loss({"img": delta})[:5] > loss({"img": torch.zeros_like(x)})[:5]).all()


# -- axes on a tiny trained model --------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    plugins = polymodal.get_plugins()
    cfg = experiment_from_dict({
        "name": "robust", "data": {"dataset": "shapes", "params": {"image_size": 16}, "limit": 256, "batch_size": 32},
        "model": {"name": "fusion-classifier", "fusion": "concat", "encoders": {
            "image": {"name": "cnn", "params": {"width": 8, "depth": 2, "output_dim": 16}},
            "text": {"name": "gru", "params": {"embed_dim": 16, "hidden_dim": 16, "output_dim": 16}}}},
        "train": {"epochs": 4, "device": "cpu", "evaluate": False, "optimizer": {"lr": 0.005}}})
    model, mctx, data = prepare(cfg, plugins, "<test>")
    Trainer(cfg, model, mctx, data, tmp_path_factory.mktemp("train"), plugins=plugins, progress=False).fit()
    return plugins, model.eval(), mctx, data


def _ctx(plugins, mctx, axis: str, tmp_path: Path, limit: int = 96) -> AxisContext:
    return AxisContext(run="r", axis=axis, conditions={"model": "fusion-classifier", "fusion": "concat"},
                       device=torch.device("cpu"), plugins=plugins, model_ctx=mctx, out_dir=tmp_path, limit=limit)


def test_adversarial_accuracy_below_clean_and_non_increasing(trained, tmp_path: Path) -> None:
    plugins, model, mctx, data = trained
    axis = plugins.build("axes", "robustness.adversarial", attacks=["pgd"], norms=["linf"], steps=4,
                         epsilons=[1 / 255, 4 / 255, 16 / 255], targets=[["image"], ["image", "text"]])
    rows = list(axis.run(model, data, _ctx(plugins, mctx, "robustness.adversarial", tmp_path)))
    clean = next(r.value for r in rows if r.conditions["attack"] == "none")
    assert clean > 0.5  # the model learned something, so attacks have something to break
    for target in ("image", "image+text"):
        accs = [r.value for r in rows if r.metric == "robust_accuracy" and r.conditions.get("modality") == target]
        rates = [r.value for r in rows if r.metric == "attack_success_rate" and r.conditions.get("modality") == target]
        assert len(accs) == 3 and all(a <= clean for a in accs)
        assert all(a >= b for a, b in zip(accs, accs[1:]))
        assert accs[-1] < clean and rates[-1] > 0
        assert rates[-1] == pytest.approx(1 - accs[-1] / clean, abs=1e-6)
        for r in rows:
            if r.conditions.get("modality") == target and r.metric == "robust_accuracy":
                assert max(r.extra["max_perturbation"].values()) <= r.conditions["epsilon"] + 1e-5
    joint = [r.value for r in rows if r.metric == "robust_accuracy" and r.conditions.get("modality") == "image+text"]
    alone = [r.value for r in rows if r.metric == "robust_accuracy" and r.conditions.get("modality") == "image"]
    assert joint[-1] <= alone[-1] + 0.05  # attacking more inputs jointly is not weaker


def test_noise_axis_rows_and_missing_modality(trained, tmp_path: Path) -> None:
    plugins, model, mctx, data = trained
    axis = plugins.build("axes", "robustness.noise", severities=[1, 5],
                         corruptions={"image": ["gaussian_noise", "missing"], "text": ["word_dropout", "missing"]})
    rows = list(axis.run(model, data, _ctx(plugins, mctx, "robustness.noise", tmp_path)))
    acc = {(r.conditions.get("modality"), r.conditions["corruption"], r.conditions["severity"]): r.value
           for r in rows if r.metric == "accuracy"}
    clean = acc[(None, "none", 0)]
    assert set(acc) == {(None, "none", 0)} | {(f, c, s) for f, cs in (("image", ("gaussian_noise", "missing")),
                                                                          ("text", ("word_dropout", "missing")))
                                               for c in cs for s in (1, 5)}
    # Text names the shape, so losing all of it must hurt this model.
    assert acc[("text", "missing", 5)] < clean
    auc = {(r.conditions["modality"], r.conditions["corruption"]): r for r in rows if r.metric == "auc_relative"}
    r = auc[("text", "missing")]
    assert r.extra["values"] == [acc[("text", "missing", 1)], acc[("text", "missing", 5)]]
    assert r.value == pytest.approx(summarise(clean, [1, 5], r.extra["values"]).auc_relative)
    assert {r.conditions["modality"] for r in rows if r.metric == "mce"} == {"image", "text", "all"}
    # Rerunning gives the same numbers (corruptions are seeded by sample id).
    again = list(axis.run(model, data, _ctx(plugins, mctx, "robustness.noise", tmp_path)))
    assert [x.value for x in again] == [x.value for x in rows]


def test_missing_corruption_gives_all_false_masks(trained) -> None:
    from polymodal_plugins.axes.noise import Cell, NoiseAxis

    _plugins, _model, _mctx, data = trained
    samples = [data.splits["test"][i] for i in range(5)]
    cell = Cell("text", "missing", 5)
    batch = data.collate([{**s, "text": NoiseAxis._corrupt("text", cell, s["text"], s["id"], 0)} for s in samples])
    assert not batch.inputs["text"].mask.any() and batch.inputs["image"].mask.all()


def test_noise_axis_config_errors(trained, tmp_path: Path) -> None:
    plugins, model, mctx, data = trained
    with pytest.raises(ConfigError, match="severities"):
        plugins.build("axes", "robustness.noise", severities=[0, 9])
    axis = plugins.build("axes", "robustness.noise", corruptions={"image": ["blurr"]})
    with pytest.raises(ConfigError, match="corruptions.image.*did you mean"):
        list(axis.run(model, data, _ctx(plugins, mctx, "robustness.noise", tmp_path)))
    with pytest.raises(ConfigError, match="norms"):
        plugins.build("axes", "robustness.adversarial", norms=["l1"])


def test_noise_axis_on_an_embedding_model_reports_recall_both_ways(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    plugins = polymodal.get_plugins()
    cfg = experiment_from_dict({
        "name": "dual", "data": {"dataset": "shapes", "params": {"image_size": 16}, "limit": 64, "batch_size": 32},
        "model": {"name": "dual-encoder", "params": {"embed_dim": 16}, "encoders": {
            "image": {"name": "cnn", "params": {"width": 8, "depth": 2, "output_dim": 16}},
            "text": {"name": "gru", "params": {"embed_dim": 16, "hidden_dim": 16, "output_dim": 16}}}},
        "train": {"epochs": 0, "device": "cpu", "evaluate": False}})
    model, mctx, data = prepare(cfg, plugins, "<test>")
    axis = plugins.build("axes", "robustness.noise", severities=[5], corruptions={"image": ["missing"], "text": []})
    rows = list(axis.run(model.eval(), data, _ctx(plugins, mctx, "robustness.noise", tmp_path, limit=40)))
    recall = {(r.conditions.get("corruption"), r.conditions["direction"]): r.value
              for r in rows if r.metric == "recall@1"}
    assert set(recall) == {("none", "image->text"), ("none", "text->image"),
                           ("missing", "image->text"), ("missing", "text->image")}
    assert all(0.0 <= v <= 1.0 for v in recall.values())
    # With every image missing all image embeddings coincide. The registered ``retrieval`` ranks ties by
    # index: every text finds image 0 first, so only text 0 hits; every image query ranks the texts alike,
    # so one image hits. Chance (1/40) both ways, where the old meter's own count scored these optimistically.
    assert recall[("missing", "text->image")] == pytest.approx(1 / 40)
    assert recall[("missing", "image->text")] == pytest.approx(1 / 40)
