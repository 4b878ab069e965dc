"""Scoring files never imports torch, and the in-run torchmetrics wrappers give the kernels' numbers.

``polymodal score`` calls the numpy kernels (``caption_scores``,
``retrieval_scores``, ``fidelity_scores``); the ``Metric`` classes a run uses
wrap the same kernels. These tests pin both halves: a fresh interpreter's
``-X importtime`` log shows no torch, and both paths agree exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from polymodal_plugins.metrics import caption_scores, fidelity_scores, retrieval_scores
from polymodal_plugins.metrics.caption import CaptionScores
from polymodal_plugins.metrics.fidelity import FID, KID, InceptionScore
from polymodal_plugins.metrics.ptb_tokenize import tokenize_caption
from polymodal_plugins.metrics.retrieval import RetrievalRecall

from test_metrics_caption import CORPUS


@pytest.fixture(scope="module")
def score_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    ann = {"annotations": [{"image_id": i, "caption": r} for i, (_, refs) in enumerate(CORPUS) for r in refs]}
    res = [{"image_id": i, "caption": c} for i, (c, _) in enumerate(CORPUS)]
    (d / "ann.json").write_text(json.dumps(ann), encoding="utf-8")
    (d / "res.json").write_text(json.dumps(res), encoding="utf-8")
    rng = np.random.default_rng(0)
    np.save(d / "img.npy", rng.normal(size=(20, 8)).astype(np.float32))
    np.save(d / "txt.npy", rng.normal(size=(40, 8)).astype(np.float32))
    np.save(d / "t2i.npy", np.arange(40) % 20)
    np.save(d / "real.npy", rng.normal(size=(60, 8)))
    np.save(d / "gen.npy", rng.normal(0.2, 1.1, size=(60, 8)))
    np.save(d / "logits.npy", rng.normal(scale=3, size=(60, 5)))
    return d


SUBCOMMANDS = {
    "captions": ["--references", "ann.json", "--predictions", "res.json"],
    "retrieval": ["--image-embeddings", "img.npy", "--text-embeddings", "txt.npy", "--text-to-image", "t2i.npy"],
    "fid": ["--real", "real.npy", "--generated", "gen.npy"],
    "kid": ["--real", "real.npy", "--generated", "gen.npy", "--subsets", "5", "--subset-size", "20"],
    "is": ["--logits", "logits.npy", "--splits", "5"],
}


@pytest.mark.parametrize("kind", sorted(SUBCOMMANDS))
def test_score_on_files_imports_neither_torch_nor_torchmetrics(score_files, kind):
    args = [a if not a.endswith((".json", ".npy")) else str(score_files / a) for a in SUBCOMMANDS[kind]]
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "polymodal", "score", kind, *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)  # the scores came out
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "numpy" in imported  # the log is the one we think it is
    heavy = sorted(m for m in imported if m.split(".")[0] in {"torch", "torchmetrics", "torchvision", "transformers"})
    assert heavy == [], f"polymodal score {kind} imported {heavy[:5]}"


def test_caption_metric_equals_kernel():
    cands = [c for c, _ in CORPUS]
    refs = [list(r) for _, r in CORPUS]
    metric = CaptionScores()
    metric.update(cands[:5], refs[:5])
    metric.update(cands[5:], refs[5:])
    summary, per_image = metric.compute_per_image()
    k_summary, k_per_image = caption_scores.caption_scores([tokenize_caption(c) for c in cands],
                                                           [[tokenize_caption(r) for r in rs] for rs in refs])
    assert summary == k_summary and per_image == k_per_image
    assert {k: float(v) for k, v in metric.compute().items()} == k_summary


def test_retrieval_metric_equals_kernel():
    g = torch.Generator().manual_seed(1)
    img = torch.randn(30, 6, generator=g)
    t2i = torch.randint(0, 30, (70,), generator=g)
    txt = img[t2i] + torch.randn(70, 6, generator=g)
    metric = RetrievalRecall(chunk_size=8)
    metric.update(img[:12], torch.arange(12), txt[:40], t2i[:40])
    metric.update(img[12:], torch.arange(12, 30), txt[40:], t2i[40:])
    got = {k: float(v) for k, v in metric.compute().items()}
    want = retrieval_scores.retrieval_metrics(img.numpy(), txt.numpy(), t2i.numpy(), chunk_size=8)
    assert got == want


def test_fidelity_metrics_equal_kernels():
    rng = np.random.default_rng(5)
    real, gen, logits = rng.normal(size=(80, 6)), rng.normal(0.3, 1.2, size=(70, 6)), rng.normal(size=(50, 7))
    fid, kid, isc = FID(), KID(subsets=7, subset_size=30), InceptionScore(splits=5)
    for x, is_real in ((real[:50], True), (gen[:20], False), (real[50:], True), (gen[20:], False)):
        fid.update(torch.from_numpy(x), real=is_real)
        kid.update(torch.from_numpy(x), real=is_real)
    isc.update(torch.from_numpy(logits))
    assert float(fid.compute()) == fidelity_scores.frechet_distance(real, gen)
    k = fidelity_scores.kernel_inception_distance(real, gen, subsets=7, subset_size=30)
    assert {n: float(v) for n, v in kid.compute().items()} == {"kid_mean": k.mean, "kid_std": k.std}
    i = fidelity_scores.inception_score(logits, splits=5)
    assert {n: float(v) for n, v in isc.compute().items()} == {"is_mean": i.mean, "is_std": i.std}


@pytest.mark.parametrize("subsets, subset_size", [(12, 40), (3, 90)])
def test_kid_full_kernel_quadratic_forms_equal_per_subset(subsets, subset_size):
    rng = np.random.default_rng(2)
    real, gen = rng.normal(size=(100, 5)), rng.normal(0.1, 1.3, size=(95, 5))
    fast = fidelity_scores.kernel_inception_distance(real, gen, subsets=subsets, subset_size=subset_size)
    slow = fidelity_scores.kernel_inception_distance(real, gen, subsets=subsets, subset_size=subset_size, memory_bound=0)
    assert fast.mean == pytest.approx(slow.mean, rel=1e-12, abs=1e-15)
    assert fast.std == pytest.approx(slow.std, rel=1e-9, abs=1e-15)


def test_ngram_index_one_split_equals_per_sentence_split():
    from polymodal_plugins.metrics.ngram_index import index_texts

    texts = ["a b a b a", "", "  b  a\tc ", "c c c c", "a b c a b c"]
    # a NUL inside a text makes the one-split path ambiguous: it must fall back and give the same index
    for with_nul in (False, True):
        t = [x.replace("c", "\x00") for x in texts] if with_nul else texts
        got = index_texts(t, n=3)
        assert got.lengths.tolist() == [5, 0, 3, 4, 6]
        bigrams = {(int(g), int(s)): int(c) for g, s, c in zip(got.orders[1].ngram, got.orders[1].sentence,
                                                               got.orders[1].count)}
        assert sum(bigrams.values()) == 4 + 0 + 2 + 3 + 5
        assert list(zip(got.orders[1].ngram.tolist(), got.orders[1].sentence.tolist())) == sorted(bigrams)
        # "a b" occurs twice in sentence 0 and twice in sentence 4
        counts = sorted(c for (g, s), c in bigrams.items() if s in (0, 4) and c == 2)
        assert counts == [2, 2, 2, 2]  # "a b" x2 and "b a" x2 in 0; "a b", "b c" x2 in 4


@pytest.mark.parametrize("top", [1 << 10, 1 << 30, 1 << 50, 1 << 62])
def test_stable_order_equals_stable_argsort_for_every_key_width(top):
    from polymodal_plugins.metrics.ngram_index import _stable_order

    rng = np.random.default_rng(top % 97)
    key = rng.integers(0, top, 5000, dtype=np.int64)
    key[::7] = key[0]  # ties must stay in position order
    assert np.array_equal(_stable_order(key), np.argsort(key, kind="stable"))
