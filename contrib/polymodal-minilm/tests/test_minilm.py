"""The minilm encoder: real pretrained weights, loaded offline, equal to the reference pipeline."""

from __future__ import annotations

import os
import tomllib

import pytest
import torch

import polymodal_minilm
from polymodal import DataError, build_plugin_manager
from polymodal.batch import ModalityBatch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

SENTENCES = ["a red circle", "a crimson round shape", "a blue square on a white background"]


@pytest.fixture(scope="module")
def encoder():
    plugins = build_plugin_manager(entry_points=False, extra_plugins={"minilm.encoder": polymodal_minilm.encoder})
    return plugins.build("encoders", "minilm")


def tokenize(encoder, texts):
    from transformers import AutoTokenizer

    cfg = encoder.preprocess_config()
    tok = AutoTokenizer.from_pretrained(cfg["tokenizer"], local_files_only=True)
    out = tok(texts, padding=True, truncation=True, max_length=cfg["max_length"], return_tensors="pt")
    return ModalityBatch(out["input_ids"], out["attention_mask"].bool())


def test_pooled_features_equal_sentence_transformers(encoder):
    """Masked mean pooling of our token features is the model's reference sentence embedding."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(encoder.path), device="cpu", local_files_only=True)
    expected = reference.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True)
    with torch.no_grad():
        feats = encoder(tokenize(encoder, SENTENCES))
    ours = torch.nn.functional.normalize(feats.pooled(), dim=-1)
    assert feats.tokens.shape[-1] == encoder.output_dim == 384
    torch.testing.assert_close(ours, expected.cpu(), atol=1e-5, rtol=1e-4)


def test_pretrained_semantics_paraphrase_is_closer(encoder):
    with torch.no_grad():
        emb = torch.nn.functional.normalize(encoder(tokenize(encoder, SENTENCES)).pooled(), dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.1


def test_frozen_stays_in_eval_and_has_no_gradients(encoder):
    encoder.train()
    assert not encoder.backbone.training
    assert not any(p.requires_grad for p in encoder.parameters())
    a = encoder(tokenize(encoder, SENTENCES[:1])).tokens
    b = encoder(tokenize(encoder, SENTENCES[:1])).tokens
    assert torch.equal(a, b)  # no dropout noise while "training"


def test_missing_caption_row_is_masked_and_finite(encoder):
    batch = tokenize(encoder, SENTENCES[:2])
    batch.mask[1] = False
    with torch.no_grad():
        feats = encoder(batch)
    assert torch.isfinite(feats.tokens).all()
    assert not feats.present[1] and (feats.pooled()[1] == 0).all()


def test_bad_input_is_a_data_error(encoder):
    with pytest.raises(DataError, match="token ids \\[B, T\\]"):
        encoder(ModalityBatch(torch.randn(2, 5), torch.ones(2, 5, dtype=torch.bool)))
    with pytest.raises(DataError, match="MiniLM tokenizer"):
        encoder(ModalityBatch(torch.full((1, 3), 10**6), torch.ones(1, 3, dtype=torch.bool)))


def test_preprocess_config_names_the_bundled_tokenizer(encoder):
    cfg = encoder.preprocess_config()
    assert cfg["max_length"] == 32
    assert os.path.isfile(os.path.join(cfg["tokenizer"], "tokenizer.json"))


def _suite(make_plugins, plugin, entry_point, suite_name):
    """The shipped suite file as TOML tables (the runner's validation of it is tested in the main repo)."""
    plugins = make_plugins(plugin, names=[entry_point])
    with open(plugins.get("suites", suite_name).load()(), "rb") as fh:
        return tomllib.load(fh)


def test_demo_suite_compares_frozen_minilm_with_a_from_scratch_tower(make_plugins):
    suite = _suite(make_plugins, polymodal_minilm.suite, "minilm.suite", "minilm-zero-shot")
    towers = {label: run["model"]["encoders"]["text"] for label, run in suite["runs"].items()}
    assert towers["minilm"]["name"] == "minilm" and towers["minilm"]["frozen"] is True
    assert towers["gru"]["name"] == "gru"
    assert suite["defaults"]["model"]["name"] == "dual-encoder"


def test_demo_suite_evaluates_unseen_combinations_with_unseen_phrasings(make_plugins):
    suite = _suite(make_plugins, polymodal_minilm.suite, "minilm.suite", "minilm-zero-shot")
    zero_shot = {label: e for label, e in suite["axes"].items() if e.get("axis") == "zero-shot"}
    assert set(zero_shot) == {"zs-seen-phrasing", "zs-unseen-phrasing"}
    assert all(e["split"] == "zeroshot" and e["target"] == "combo" for e in zero_shot.values())
    # No unseen-phrasing prompt occurs inside any training caption (public API: the dataset's own captions).
    shapes = build_plugin_manager(entry_points=True).build("datasets", "shapes", split="train", num_samples=400)
    captions = shapes.texts("text")
    for color, shape in (("green", "circle"), ("red", "square")):
        for template in zero_shot["zs-unseen-phrasing"]["templates"]:
            prompt = template.format(f"{color} {shape}", color=color, shape=shape)
            stem = prompt.split(color)[0] if template.index("{") > 0 else prompt
            assert not any(prompt in c for c in captions), prompt
            assert not any(c.startswith(stem) for c in captions), (stem, prompt)


def test_fusion_ablation_suite_sweeps_third_party_fusions(make_plugins):
    suite = _suite(make_plugins, polymodal_minilm.fusion_suite, "minilm.fusion-suite", "minilm-fusion-ablation")
    (run,) = suite["runs"].values()
    assert {"tensor", "low-rank-tensor", "gmu"} <= set(run["model"]["fusion"])
    assert run["model"]["encoders"]["text"]["name"] == "minilm"


def test_installed_entry_points():
    plugins = build_plugin_manager(entry_points=True)
    assert plugins.get("encoders", "minilm").distribution == "polymodal-minilm"
    assert plugins.get("suites", "minilm-zero-shot").distribution == "polymodal-minilm"
    assert plugins.get("suites", "minilm-fusion-ablation").distribution == "polymodal-minilm"


def test_polymodal_text_modality_configured_by_the_encoder_feeds_it(encoder):
    """End to end through the installed text modality: load -> preprocess -> collate -> encode."""
    from sentence_transformers import SentenceTransformer

    plugins = build_plugin_manager(entry_points=True)
    text = plugins.build("modalities", "text").configure(encoder.preprocess_config())
    batch = text.collate([text.preprocess(text.load(s)) for s in SENTENCES] + [None])  # last: missing caption
    with torch.no_grad():
        feats = encoder(batch)
    reference = SentenceTransformer(str(encoder.path), device="cpu", local_files_only=True)
    expected = reference.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True).cpu()
    torch.testing.assert_close(torch.nn.functional.normalize(feats.pooled()[:3], dim=-1), expected, atol=1e-5, rtol=1e-4)
    assert not feats.present[3]


def test_passes_polymodal_encoder_and_modality_contract_checkers(encoder):
    from polymodal.testing import check_encoder, check_modality

    text = build_plugin_manager(entry_points=True).build("modalities", "text").configure(encoder.preprocess_config())
    batch = check_modality(text, [text.load(s) for s in SENTENCES])
    check_encoder(lambda: encoder, batch)  # the module's encoder: loading the weights twice costs seconds


@pytest.mark.parametrize("suite_name", ["minilm-zero-shot", "minilm-fusion-ablation"])
def test_shipped_suites_pass_the_suite_contract(make_plugins, suite_name):
    from polymodal.testing import check_suite

    # validated against the installed plugins (the suites name the dual encoder, datasets and axes of the main repo)
    assert check_suite(suite_name, plugins=make_plugins(entry_points=True)).runs
