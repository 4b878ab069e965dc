"""ModalityGap against the published formulas, on geometry with known answers."""

from __future__ import annotations

import pytest
import torch

import polymodal_modality_gap
from polymodal import DataError, build_plugin_manager

torch.set_num_threads(1)


@pytest.fixture
def build(make_plugins):
    plugins = make_plugins(polymodal_modality_gap.metric, names=["modality-gap.metric"])
    return lambda **kw: plugins.build("metrics", "modality-gap", **kw)


def reference(a, b, t=2.0, alpha=2.0):
    """Straight from the papers: Liang et al.'s centroid gap, Wang & Isola's lalign / lunif (pdist form)."""
    a = torch.nn.functional.normalize(a.double(), dim=1)
    b = torch.nn.functional.normalize(b.double(), dim=1)
    return {
        "gap": (a.mean(0) - b.mean(0)).norm(),
        "alignment": (a - b).norm(p=2, dim=1).pow(alpha).mean(),
        "uniformity_a": torch.pdist(a, p=2).pow(2).mul(-t).exp().mean().log(),
        "uniformity_b": torch.pdist(b, p=2).pow(2).mul(-t).exp().mean().log(),
    }


def test_matches_reference_formulas_across_batches_and_chunks(build):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(301, 16, generator=g) + 2.0  # a cone away from b's
    b = torch.randn(301, 16, generator=g) - 1.0
    metric = build(chunk_size=64)
    for i in range(0, 301, 50):
        metric.update(a[i : i + 50], b[i : i + 50])
    out = metric.compute()
    for key, value in reference(a, b).items():
        torch.testing.assert_close(out[key], value, rtol=1e-9, atol=1e-9, msg=key)
    assert out["samples"] == 301


def test_known_geometry(build):
    x = torch.randn(50, 8)
    same = build()
    same.update(x, x)
    out = same.compute()
    assert out["gap"] == pytest.approx(0, abs=1e-12) and out["alignment"] == pytest.approx(0, abs=1e-12)
    assert out["centroid_cosine"] == pytest.approx(1.0)

    # All of a at e1, all of b at e2: gap = |e1 - e2| = sqrt(2), alignment = 2, uniformity collapses to 0.
    e1, e2 = torch.eye(8)[0].repeat(10, 1), torch.eye(8)[1].repeat(10, 1) * 3.0  # scale is normalised away
    cone = build()
    cone.update(e1, e2)
    out = cone.compute()
    assert out["gap"] == pytest.approx(2**0.5)
    assert out["alignment"] == pytest.approx(2.0)
    assert out["uniformity_a"] == pytest.approx(0.0, abs=1e-12)

    # Antipodal modalities: the largest possible gap.
    far = build()
    far.update(e1, -e1)
    assert far.compute()["gap"] == pytest.approx(2.0)


def test_uniform_points_are_more_uniform_than_a_cluster(build):
    g = torch.Generator().manual_seed(1)
    spread, cluster = torch.randn(200, 3, generator=g), torch.randn(200, 3, generator=g) * 0.1 + torch.tensor([5.0, 0, 0])
    m = build()
    m.update(spread, cluster)
    out = m.compute()
    assert out["uniformity_a"] < out["uniformity_b"] - 1.0


def test_reset_and_parameters(build):
    m = build(alignment_alpha=1.0, uniformity_t=1.0)
    m.update(torch.eye(4), torch.eye(4).roll(1, dims=0))
    assert m.compute()["alignment"] == pytest.approx(2**0.5)
    m.reset()
    m.update(torch.eye(4)[:1], torch.eye(4)[1:2])
    with pytest.raises(DataError, match="at least 2"):
        m.compute()


def test_bad_input_is_a_data_error(build):
    m = build()
    with pytest.raises(DataError, match="equal shape"):
        m.update(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(DataError, match="all zeros"):
        m.update(torch.zeros(2, 3), torch.randn(2, 3))
    with pytest.raises(DataError, match="NaN"):
        m.update(torch.full((2, 3), float("nan")), torch.randn(2, 3))


def test_installed_entry_point():
    spec = build_plugin_manager(entry_points=True).get("metrics", "modality-gap")
    assert spec.distribution == "polymodal-modality-gap"


def test_passes_polymodal_metric_contract_checker(make_plugins):
    from polymodal.testing import check_metric

    plugins = make_plugins(polymodal_modality_gap.metric, names=["modality-gap.metric"])
    g = torch.Generator().manual_seed(3)
    figures = check_metric(plugins.get("metrics", "modality-gap").load(),
                           [(torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)) for _ in range(3)])
    assert {"gap", "alignment", "uniformity_a", "uniformity_b"} <= set(figures)
