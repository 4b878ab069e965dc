"""Fusion strategies: the contract every built-in fusion must honour.

Each fusion is checked with every non-empty combination of four modalities,
with padding and with a modality missing for some samples: finite outputs of
the declared size, gradients reaching parameters and inputs, and a missing
modality (or padding position) having no influence at all on the output.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from polymodal import ConfigError, DataError, PluginSettings, build_plugin_manager
from polymodal.batch import Features

torch.set_num_threads(1)

FUSIONS = ("concat", "weighted", "attention", "bilinear")
DIMS = {"image": 8, "text": 6, "audio": 5, "video": 7}
LENGTHS = {"image": 4, "text": 5, "audio": 3, "video": 2}
COMBOS = [c for r in range(1, 5) for c in itertools.combinations(sorted(DIMS), r)]
PARAMS = {
    "concat": {"dim": 12},
    "weighted": {"dim": 12, "gating": True},
    "attention": {"dim": 12, "heads": 3},
    "bilinear": {"dim": 12},
}
B = 5


@pytest.fixture(scope="module")
def plugins():
    return build_plugin_manager(PluginSettings(), entry_points=True)


def make_features(mods, seed=0, missing_sample=0):
    """Random features with padding; the last modality is missing for ``missing_sample``."""
    g = torch.Generator().manual_seed(seed)
    feats = {}
    for i, m in enumerate(mods):
        t = LENGTHS[m]
        tokens = torch.randn(B, t, DIMS[m], generator=g)
        lengths = torch.randint(1, t + 1, (B,), generator=g)
        mask = torch.arange(t)[None, :] < lengths[:, None]
        if i == len(mods) - 1 and missing_sample is not None:
            mask[missing_sample] = False
        feats[m] = Features(tokens.requires_grad_(True), mask)
    return feats


def build(plugins, name, mods, **extra):
    torch.manual_seed(0)
    params = {**PARAMS[name], **extra}
    return plugins.build("fusions", name, {m: DIMS[m] for m in mods}, **params)


def test_all_built_in_fusions_resolve_from_a_fresh_manager(plugins):
    assert {s.name for s in plugins.list("fusions")} >= set(FUSIONS)
    for name in FUSIONS:
        spec = plugins.get("fusions", name)
        assert spec.plugin == f"fusion.{name}"
        fusion = spec.build({"image": 4, "text": 3})
        assert isinstance(fusion, torch.nn.Module) and fusion.output_dim > 0


@pytest.mark.parametrize("mods", COMBOS, ids=["+".join(c) for c in COMBOS])
@pytest.mark.parametrize("name", FUSIONS)
def test_contract_for_every_combination(plugins, name, mods):
    fusion = build(plugins, name, mods)
    feats = make_features(mods)
    out = fusion(feats)
    assert out.shape == (B, fusion.output_dim)
    assert torch.isfinite(out).all()

    # Gradients reach the parameters and every present modality's tokens.
    out.square().sum().backward()
    grads = [p.grad for p in fusion.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    for m, f in feats.items():
        assert f.tokens.grad is not None and torch.isfinite(f.tokens.grad).all()
        assert f.tokens.grad[f.mask].abs().sum() > 0, m
        # masked positions (padding, missing) receive exactly no gradient
        assert (f.tokens.grad[~f.mask] == 0).all(), m

    # Interpretation refers to the last batch.
    interp = fusion.interpretation()
    assert all(isinstance(v, torch.Tensor) and torch.isfinite(v.float()).all() for v in interp.values())
    if name == "weighted":
        assert interp["modality_weights"].shape == (B, len(mods))
    if name == "attention":
        for m in mods:
            keys = interp[f"keys.{m}"]
            assert interp[f"attention.{m}"].shape == (B, 3, LENGTHS[m], keys.shape[0])
        assert interp["modality_attention"].shape == (B, len(mods), len(mods) + 1)
    if name == "concat":
        assert interp["presence"].shape == (B, len(mods))
        assert interp["modality_weight_norm"].shape == (len(mods),)
    if name == "bilinear":
        assert interp["presence"].shape == (B, len(mods))


@pytest.mark.parametrize("mods", [c for c in COMBOS if len(c) > 1], ids=lambda c: "+".join(c))
@pytest.mark.parametrize("name", FUSIONS)
def test_missing_modality_and_padding_have_no_influence(plugins, name, mods):
    fusion = build(plugins, name, mods).eval()
    feats = make_features(mods, seed=1)
    with torch.no_grad():
        ref = fusion(feats)
        # Overwrite every masked position (padding and the missing modality) with garbage, NaN included.
        garbage = {}
        for m, f in feats.items():
            tok = f.tokens.detach().clone()
            tok[~f.mask] = torch.randn_like(tok[~f.mask]) * 1e3
            if (~f.mask).any():
                tok[~f.mask.clone()] = torch.where(torch.rand_like(tok[~f.mask]) < 0.1,
                                                   torch.tensor(math.nan), tok[~f.mask])
            garbage[m] = Features(tok, f.mask)
        out = fusion(garbage)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=0, atol=0)

    # The sample missing the last modality fuses exactly as if that modality were never given.
    last = mods[-1]
    without = {m: f for m, f in feats.items() if m != last}
    with torch.no_grad():
        dropped = fusion(without)
    torch.testing.assert_close(dropped[0], ref[0], rtol=1e-5, atol=1e-6)
    # ... while the samples that do have it are influenced by it.
    assert not torch.allclose(dropped[1:], ref[1:], atol=1e-4)


@pytest.mark.parametrize("name", FUSIONS)
def test_sample_missing_everything_is_zero_not_nan(plugins, name):
    mods = ("image", "text")
    fusion = build(plugins, name, mods)
    feats = make_features(mods)
    for f in feats.values():
        f.mask[2] = False
    out = fusion(feats)
    assert torch.isfinite(out).all()
    if name != "concat" or fusion.proj is None:
        assert (out[2] == 0).all()


def test_concat_is_the_concatenation_of_masked_means(plugins):
    mods = ("image", "text")
    fusion = plugins.build("fusions", "concat", {m: DIMS[m] for m in mods}, missing_indicator=True)
    feats = make_features(mods)
    out = fusion(feats)
    assert fusion.output_dim == DIMS["image"] + DIMS["text"] + 2
    expected = []
    for b in range(B):
        row = []
        for m in mods:
            f = feats[m]
            row.append(f.tokens[b][f.mask[b]].mean(0) if f.mask[b].any() else torch.zeros(DIMS[m]))
        row.append(torch.tensor([float(feats[m].mask[b].any()) for m in mods]))
        expected.append(torch.cat(row))
    torch.testing.assert_close(out, torch.stack(expected).detach())


def test_weighted_fixed_weights_renormalise_over_present_modalities(plugins):
    mods = ("image", "text")
    fusion = plugins.build("fusions", "weighted", {m: DIMS[m] for m in mods}, weights={"image": 3, "text": 1})
    feats = make_features(mods)  # text missing for sample 0
    out = fusion(feats)
    w = fusion.interpretation()["modality_weights"]
    torch.testing.assert_close(w[0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(w[1:], torch.tensor([[0.75, 0.25]]).expand(B - 1, 2))
    proj_img = fusion.proj["image"](feats["image"].pooled())
    proj_txt = fusion.proj["text"](feats["text"].pooled())
    torch.testing.assert_close(out[1:], 0.75 * proj_img[1:] + 0.25 * proj_txt[1:])
    torch.testing.assert_close(out[0], proj_img[0])


def test_weighted_learned_weights_are_a_softmax_and_gating_is_per_sample(plugins):
    mods = ("audio", "image", "text")
    plain = plugins.build("fusions", "weighted", {m: DIMS[m] for m in mods})
    with torch.no_grad():
        plain.logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    plain(make_features(mods, missing_sample=None))
    w = plain.interpretation()["modality_weights"]
    torch.testing.assert_close(w, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0).expand(B, 3))

    gated = plugins.build("fusions", "weighted", {m: DIMS[m] for m in mods}, gating=True)
    gated(make_features(mods, missing_sample=None))
    wg = gated.interpretation()["modality_weights"]
    torch.testing.assert_close(wg.sum(1), torch.ones(B))
    assert (wg.std(0) > 1e-4).any(), "gating should give different weights to different samples"


def test_attention_respects_masks_and_uses_null_slot(plugins):
    mods = ("image", "text")
    fusion = build(plugins, "attention", mods)
    feats = make_features(mods)  # text missing for sample 0
    fusion(feats)
    interp = fusion.interpretation()
    att, keys = interp["attention.image"], interp["keys.image"]
    text_cols = keys == fusion.modalities.index("text")
    valid_q = feats["image"].mask
    # Rows of valid query tokens are distributions; padded query rows are zero.
    sums = att.sum(-1)  # [B, H, T]
    torch.testing.assert_close(sums[valid_q.unsqueeze(1).expand_as(sums)], torch.ones(int(valid_q.sum()) * 3))
    assert (sums[(~valid_q).unsqueeze(1).expand_as(sums)] == 0).all()
    # No attention on padded text keys, none at all on text for the sample where it is missing.
    pad_cols = ~feats["text"].mask  # [B, T_text]
    text_att = att[..., text_cols]  # [B, H, T_img, T_text]
    assert (text_att * pad_cols[:, None, None, :]).abs().max() == 0
    assert text_att[0].abs().max() == 0
    torch.testing.assert_close(att[0, :, valid_q[0], -1], torch.ones(3, int(valid_q[0].sum())))
    summary = interp["modality_attention"]
    torch.testing.assert_close(summary[:, 0].sum(-1)[valid_q.any(1)], torch.ones(B))

    single = build(plugins, "attention", ("image",))
    out = single(make_features(("image",), missing_sample=None))
    assert torch.isfinite(out).all()
    assert (single.interpretation()["attention.image"][..., -1][feats["image"].mask.unsqueeze(1).expand(B, 3, -1)] == 1).all()


def test_bilinear_is_the_product_of_one_plus_normalised_tanh_projections(plugins):
    mods = ("image", "text")
    fusion = build(plugins, "bilinear", mods)
    feats = make_features(mods)  # text missing for sample 0
    out = fusion(feats)
    h = {m: torch.tanh(fusion.norm[m](fusion.proj[m](feats[m].pooled()))) for m in mods}
    torch.testing.assert_close(out[1:], ((1 + h["image"]) * (1 + h["text"]) - 1)[1:])
    torch.testing.assert_close(out[0], h["image"][0])  # a missing modality is the factor 1


@pytest.mark.parametrize("name", ["concat", "bilinear"])
def test_only_a_multiplicative_fusion_learns_xor_with_a_linear_head(plugins, name):
    """Concatenation + linear head is additive (one term per modality), so XOR stays near chance;
    the bilinear product puts the interaction within reach of the same linear head."""
    g = torch.Generator().manual_seed(0)
    n = 256
    a, b = torch.randn(n, 1, 4, generator=g), torch.randn(n, 1, 4, generator=g)
    y = ((a[:, 0, 0] > 0) ^ (b[:, 0, 0] > 0)).long()
    ones = torch.ones(n, 1, dtype=torch.bool)
    feats = {"image": Features(a, ones), "text": Features(b, ones)}
    torch.manual_seed(0)
    fusion = plugins.build("fusions", name, {"image": 4, "text": 4}, **({"dim": 16} if name == "bilinear" else {}))
    acc = fit_accuracy(fusion, torch.nn.Linear(fusion.output_dim, 2), feats, y)
    assert (acc > 0.9) if name == "bilinear" else (acc < 0.7), acc


def fit_accuracy(fusion, head, feats, y, steps=150):
    """Train fusion + head with Adam on (feats, y); training accuracy afterwards."""
    opt = torch.optim.Adam([*fusion.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(head(fusion(feats)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (head(fusion(feats)).argmax(1) == y).float().mean().item()


def test_bad_configuration_is_a_config_error(plugins):
    with pytest.raises(ConfigError, match="divisible"):
        plugins.build("fusions", "attention", {"image": 4}, dim=10, heads=3)
    with pytest.raises(ConfigError, match="did you mean 'image'"):
        plugins.build("fusions", "weighted", {"image": 4, "text": 3}, weights={"imgae": 1, "text": 1})
    with pytest.raises(ConfigError, match="gating"):
        plugins.build("fusions", "weighted", {"image": 4}, weights={"image": 1}, gating=True)
    with pytest.raises(ConfigError, match="input_dims"):
        plugins.build("fusions", "concat", {})
    with pytest.raises(ConfigError, match="positive integer"):
        plugins.build("fusions", "concat", {"image": 4}, dim=0)


@pytest.mark.parametrize("name", FUSIONS)
def test_bad_features_are_a_data_error_naming_the_modality(plugins, name):
    fusion = build(plugins, name, ("image", "text"))
    good = make_features(("image", "text"))
    with pytest.raises(DataError, match="'text' has feature size 4.*input_dims\\['text'\\] = 6"):
        fusion({"image": good["image"], "text": Features(torch.zeros(B, 2, 4), torch.ones(B, 2, dtype=torch.bool))})
    with pytest.raises(DataError, match="'audoi'"):
        fusion({**good, "audoi": good["image"]})
    with pytest.raises(DataError, match="batch size"):
        fusion({"image": good["image"], "text": Features(torch.zeros(B + 1, 2, 6), torch.ones(B + 1, 2, dtype=torch.bool))})


@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_learns_a_task_that_needs_both_modalities(plugins, name):
    """XOR of the two modalities' signs: unsolvable from either modality alone."""
    g = torch.Generator().manual_seed(0)
    n = 256
    a = torch.randn(n, 3, 4, generator=g)
    b = torch.randn(n, 2, 4, generator=g)
    y = ((a[..., 0].mean(1) > 0) ^ (b[..., 0].mean(1) > 0)).long()
    feats = {"image": Features(a, torch.ones(n, 3, dtype=torch.bool)), "text": Features(b, torch.ones(n, 2, dtype=torch.bool))}
    torch.manual_seed(0)
    fusion = plugins.build("fusions", name, {"image": 4, "text": 4}, **{"concat": {}, "weighted": {"dim": 16}, "attention": {"dim": 16, "heads": 2}, "bilinear": {"dim": 16}}[name])
    head = torch.nn.Sequential(torch.nn.Linear(fusion.output_dim, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    acc = fit_accuracy(fusion, head, feats, y)
    assert acc > 0.9, acc


def test_fusions_still_register_after_their_modules_were_imported():
    """Regression: a plugin object named like its submodule is replaced by it on import."""
    import importlib

    for name in FUSIONS:
        importlib.import_module(f"polymodal_plugins.fusions.{name}")
    fresh = build_plugin_manager(PluginSettings(), entry_points=True)
    assert {s.name for s in fresh.list("fusions")} >= set(FUSIONS)
