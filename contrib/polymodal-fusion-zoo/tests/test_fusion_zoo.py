"""Behaviour of the fusion-zoo strategies, loaded the way polymodal loads them."""

from __future__ import annotations

import pytest
import torch

import polymodal_fusion_zoo
from polymodal import DataError, ConfigError, build_plugin_manager
from polymodal.batch import Features
from polymodal_fusion_zoo.tensor_fusion import outer_with_ones

NAMES = ("tensor", "low-rank-tensor", "gmu")
DIMS = {"image": 6, "text": 5}


@pytest.fixture
def plugins(make_plugins):
    return make_plugins(polymodal_fusion_zoo.tensor, polymodal_fusion_zoo.low_rank_tensor, polymodal_fusion_zoo.gmu,
                        names=["zoo.tensor", "zoo.lrt", "zoo.gmu"])


def feats(batch: int = 4, tokens: int = 3, present: dict[str, list[bool]] | None = None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m, d in DIMS.items():
        mask = torch.ones(batch, tokens, dtype=torch.bool)
        mask[:, -1] = False  # padding must be ignored
        if present and m in present:
            mask[~torch.tensor(present[m])] = False
        out[m] = Features(torch.randn(batch, tokens, d, generator=g), mask)
    return out


def test_registered_with_lazy_factories(plugins):
    assert [s.name for s in plugins.list("fusions")] == sorted(NAMES)
    for name in NAMES:
        assert isinstance(plugins.get("fusions", name).factory, str)  # listing imports no torch code


@pytest.mark.parametrize("name", NAMES)
def test_contract_shape_grad_and_interpretation(plugins, name):
    torch.manual_seed(0)
    fusion = plugins.build("fusions", name, DIMS, output_dim=7)
    out = fusion(feats())
    assert out.shape == (4, fusion.output_dim) == (4, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in fusion.parameters() if p.requires_grad)
    interp = fusion.interpretation()
    assert interp and all(isinstance(v, torch.Tensor) for v in interp.values())


@pytest.mark.parametrize("name", NAMES)
def test_missing_modality_is_an_absent_key_and_ignores_its_data(plugins, name):
    torch.manual_seed(0)
    fusion = plugins.build("fusions", name, DIMS, output_dim=7).eval()
    f = feats(present={"image": [True, False, True, False]})
    out = fusion(f)
    assert torch.isfinite(out).all()
    # Garbage in the masked rows changes nothing.
    f2 = dict(f)
    f2["image"] = Features(f["image"].tokens + 100.0 * (~f["image"].present).view(-1, 1, 1), f["image"].mask)
    torch.testing.assert_close(fusion(f2), out)
    # An all-missing modality is the same as not passing it at all.
    text_only = fusion({"text": f["text"]})
    f3 = feats(present={"image": [False] * 4})
    torch.testing.assert_close(fusion(f3), text_only)
    torch.testing.assert_close(out[[1, 3]], text_only[[1, 3]])
    assert not torch.allclose(out[[0, 2]], text_only[[0, 2]])


def test_tensor_product_keeps_unimodal_vectors_and_constant():
    a, b = torch.tensor([[2.0, 3.0]]), torch.tensor([[5.0, 7.0, 11.0]])
    z = outer_with_ones([a, b]).view(3, 4)  # [a;1] x [b;1]
    torch.testing.assert_close(z[:2, :3], a.T @ b)  # bimodal interactions
    torch.testing.assert_close(z[2, :3], b[0])  # unimodal b survives via a's 1
    torch.testing.assert_close(z[:2, 3], a[0])
    assert z[2, 3] == 1.0


def test_tensor_fusion_without_projection_is_the_outer_product(plugins):
    fusion = plugins.build("fusions", "tensor", DIMS, modality_dim=3, output_dim=None)
    assert fusion.output_dim == 16
    f = feats(present={"text": [True, True, False, False]})
    z = fusion(f)
    reduced_text = z.view(4, 4, 4)[:, 3, :3]  # image's appended 1 picks out the text vector
    assert (reduced_text[2:] == 0).all() and (reduced_text[:2] != 0).any()
    assert (z.view(4, 4, 4)[:, 3, 3] == 1).all()


def test_tensor_fusion_refuses_exploding_size(plugins):
    with pytest.raises(ConfigError, match="low-rank-tensor"):
        plugins.build("fusions", "tensor", {m: 8 for m in "abcdefg"}, modality_dim=15)


def test_low_rank_equals_tensor_fusion_with_the_factorised_weight(plugins):
    torch.manual_seed(1)
    lmf = plugins.build("fusions", "low-rank-tensor", DIMS, output_dim=3, rank=5)
    f = feats(present={"image": [True, False, True, True]})
    pooled = [f[m].pooled() * f[m].present.unsqueeze(-1) for m in sorted(DIMS)]
    expected = outer_with_ones(pooled) @ lmf.full_weight() + lmf.bias
    torch.testing.assert_close(lmf(f), expected, rtol=1e-4, atol=1e-5)


def test_gmu_gates_are_a_distribution_over_present_modalities(plugins):
    torch.manual_seed(2)
    gmu = plugins.build("fusions", "gmu", DIMS, output_dim=4)
    f = feats(present={"image": [True, False, True, False], "text": [True, True, False, False]})
    gates, hidden = gmu.gates(f)
    sums = gates.sum(dim=1)
    torch.testing.assert_close(sums[:3], torch.ones(3, 4))
    assert (gates[1, 0] == 0).all() and (gates[2, 1] == 0).all()  # image index 0, text index 1
    assert (gmu(f)[3] == 0).all()  # nothing present: zero, not NaN
    # Two modalities: softmax gating is the paper's sigmoid form z*h_a + (1-z)*h_b.
    both = feats()
    g, h = gmu.gates(both)
    logits = gmu.gate(torch.cat([both[m].pooled() for m in sorted(DIMS)], 1)).view(-1, 2, 4)
    z = torch.sigmoid(logits[:, 0] - logits[:, 1])
    torch.testing.assert_close(gmu(both), z * h[:, 0] + (1 - z) * h[:, 1])
    assert gmu.interpretation()["gates"].shape == (4, 2)


def test_wrong_feature_width_is_a_data_error(plugins):
    fusion = plugins.build("fusions", "gmu", DIMS)
    bad = feats()
    bad["text"] = Features(torch.randn(4, 3, 9), torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(DataError, match="'text' has feature size 9.*input_dims\\['text'\\] = 5"):
        fusion(bad)
    with pytest.raises(DataError, match="audio"):
        fusion({**feats(), "audio": bad["text"]})


@pytest.mark.parametrize("name", ["tensor", "low-rank-tensor"])
def test_multiplicative_fusions_learn_an_interaction_a_sum_cannot(plugins, name):
    """y = a * b (sign of a product) is linearly inseparable from [a; b]; tensor fusions fit it."""
    torch.manual_seed(0)
    dims = {"a": 1, "b": 1}
    x = torch.randn(256, 2)
    y = (x[:, 0] * x[:, 1] > 0).float()
    f = {m: Features(x[:, i : i + 1, None].expand(-1, 1, 1).contiguous(), torch.ones(256, 1, dtype=torch.bool))
         for i, m in enumerate(dims)}
    fusion = plugins.build("fusions", name, dims, output_dim=8)
    head = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam([*fusion.parameters(), *head.parameters()], lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(fusion(f)).squeeze(1), y)
        loss.backward()
        opt.step()
    acc = ((head(fusion(f)).squeeze(1) > 0).float() == y).float().mean()
    assert acc > 0.9


def test_declared_api_version_loads_on_this_core():
    assert polymodal_fusion_zoo.tensor.POLYMODAL_API == "2.1"
    plugins = build_plugin_manager(entry_points=False, extra_plugins={"zoo.tensor": polymodal_fusion_zoo.tensor})
    assert plugins.records["zoo.tensor"].status == "loaded"


def test_installed_entry_points_register_the_fusions():
    """After `pip install`, polymodal discovers the three fusions like any third-party plugin."""
    plugins = build_plugin_manager(entry_points=True)
    for name in NAMES:
        spec = plugins.get("fusions", name)
        assert spec.distribution == "polymodal-fusion-zoo"


@pytest.mark.parametrize("name", NAMES)
def test_passes_polymodal_fusion_contract_checker(plugins, name):
    from polymodal.testing import check_fusion

    check_fusion(plugins.get("fusions", name).load(), DIMS, output_dim=7)
