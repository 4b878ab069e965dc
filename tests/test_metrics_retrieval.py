"""Retrieval, classification and zero-shot metrics against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polymodal_plugins.metrics.classification import ClassificationReport
from polymodal_plugins.metrics.clipscore import CLIPScore
from polymodal_plugins.metrics.retrieval import RetrievalRecall, retrieval_metrics
from polymodal_plugins.metrics.zeroshot import ZeroShotAccuracy, class_embeddings


def _data(n=40, m=170, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, d, generator=g)
    t2i = torch.randint(0, n, (m,), generator=g)
    txt = img[t2i] + 1.0 * torch.randn(m, d, generator=g)
    return img, txt, t2i


def _brute(img, txt, t2i, k):
    s = torch.nn.functional.normalize(txt, dim=-1) @ torch.nn.functional.normalize(img, dim=-1).T
    t2i_hit = (s.topk(k, dim=1).indices == t2i[:, None]).any(1).double().mean()
    hits = []
    for i in range(img.shape[0]):
        pos = (t2i == i).nonzero().flatten()
        if len(pos):  # CLIP_benchmark: any caption of the image in the top k
            hits.append(bool(torch.isin(s[:, i].topk(k).indices, pos).any()))
    return float(t2i_hit), float(np.mean(hits))


@pytest.mark.parametrize("chunk", [3, 16, 4096])
def test_recall_matches_full_matrix_topk_for_any_chunk_size(chunk):
    img, txt, t2i = _data()
    r = retrieval_metrics(img, txt, t2i, ks=(1, 5), chunk_size=chunk)
    for k in (1, 5):
        t, i = _brute(img, txt, t2i, k)
        assert r[f"text_to_image_recall@{k}"] == pytest.approx(t)
        assert r[f"image_to_text_recall@{k}"] == pytest.approx(i)
    assert r["images_without_text"] == int((torch.bincount(t2i, minlength=40) == 0).sum())


def test_perfect_embeddings_give_rank_one_and_map_one():
    img = torch.eye(6)
    t2i = torch.tensor([0, 0, 1, 2, 3, 4, 5, 5])
    r = retrieval_metrics(img, img[t2i], t2i, ks=(1,), chunk_size=2)
    assert r["text_to_image_recall@1"] == 1.0 and r["image_to_text_recall@1"] == 1.0
    assert r["text_to_image_mean_rank"] == 1.0 and r["image_to_text_map"] == 1.0


def test_retrieval_metric_in_shards_equals_one_pass():
    img, txt, t2i = _data()
    full = retrieval_metrics(img, txt, t2i)
    m = RetrievalRecall()
    ids = torch.arange(40)
    # images in two shards (out of order), texts in three
    m.update(img[20:], ids[20:], txt[:50], t2i[:50])
    m.update(img[:20], ids[:20], txt[50:120], t2i[50:120])
    m.update(img[:0], ids[:0], txt[120:], t2i[120:])
    got = m.compute()
    for k, v in full.items():
        assert float(got[k]) == pytest.approx(v), k


def test_classification_report():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    targets = torch.tensor([0, 1, 2, 1])
    m = ClassificationReport(num_classes=3, top_k=(1, 2))
    m.update(scores[:2], targets[:2])
    m.update(scores[2:], targets[2:])
    out = m.compute()
    assert float(out["accuracy"]) == 0.75 and float(out["accuracy_top2"]) == 1.0
    assert out["confusion_matrix"].tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert float(out["balanced_accuracy"]) == pytest.approx((1 + 0.5 + 1) / 3)
    assert float(out["macro_f1"]) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    with pytest.raises(ValueError, match="targets must be in"):
        m.update(scores[:1], torch.tensor([5]))


def test_zero_shot_class_embeddings_normalise_average_renormalise():
    table = {"a photo of a cat.": [2.0, 0.0], "a drawing of a cat.": [0.0, 1.0],
             "a photo of a dog.": [-1.0, 0.0], "a drawing of a dog.": [0.0, -3.0]}
    emb = class_embeddings(["cat", "dog"], lambda xs: torch.tensor([table[x] for x in xs]),
                           templates=["a photo of a {}.", "a drawing of a {}."])
    s = 2 ** -0.5
    assert torch.allclose(emb, torch.tensor([[s, s], [-s, -s]]))
    m = ZeroShotAccuracy(emb, top_k=(1,))
    m.update(torch.tensor([[1.0, 0.9], [-1.0, -0.2], [1.0, 1.0]]), torch.tensor([0, 1, 1]))
    out = m.compute()
    assert float(out["accuracy_top1"]) == pytest.approx(2 / 3)
    assert float(out["mean_per_class_recall"]) == pytest.approx(0.75)


def test_clipscore_is_clipped_scaled_cosine():
    m = CLIPScore()
    m.update(image_embeddings=torch.tensor([[1.0, 0.0], [1.0, 0.0]]), text_embeddings=torch.tensor([[1.0, 1.0], [-1.0, 0.0]]))
    assert float(m.compute()) == pytest.approx(2.5 * (2**-0.5 + 0) / 2)


def _brute_ranks(img, txt, t2i):
    """Sort every query's full score row; ranks of positives by position (textbook, O(N M log M))."""
    s = torch.nn.functional.normalize(txt, dim=-1) @ torch.nn.functional.normalize(img, dim=-1).T
    t2i_rank = [int((s[j].argsort(descending=True) == t2i[j]).nonzero()[0]) + 1 for j in range(len(t2i))]
    best, ap = [], []
    for i in range(img.shape[0]):
        pos = set((t2i == i).nonzero().flatten().tolist())
        if not pos:
            continue
        order = s[:, i].argsort(descending=True).tolist()
        where = [r + 1 for r, j in enumerate(order) if j in pos]
        best.append(where[0])
        ap.append(np.mean([(h + 1) / w for h, w in enumerate(where)]))
    t = np.array(t2i_rank, dtype=float)
    return {"text_to_image_mean_rank": t.mean(), "text_to_image_mrr": (1 / t).mean(),
            "text_to_image_median_rank": float(torch.tensor(t).median()),
            "image_to_text_mean_rank": np.mean(best), "image_to_text_mrr": np.mean(1 / np.array(best)),
            "image_to_text_map": np.mean(ap)}


@pytest.mark.parametrize("chunk", [5, 64])
def test_ranks_mrr_and_map_match_sorting_each_row_with_uneven_captions(chunk):
    # random t2i leaves some images without text and gives others several captions; one pass over
    # blocks serves both directions, so blocks that split an image's captions must still count right
    img, txt, t2i = _data(n=30, m=45, d=6, seed=3)
    r = retrieval_metrics(img, txt, t2i, ks=(1,), chunk_size=chunk)
    ref = _brute_ranks(img, txt, t2i)
    assert r["images_without_text"] == int((torch.bincount(t2i, minlength=30) == 0).sum()) > 0
    for key, value in ref.items():
        assert r[key] == pytest.approx(value, abs=1e-12), key


def _stable_ranks(img, txt, t2i):
    """Every query's scores sorted with a stable sort (equal scores keep index order): ranks of the positives."""
    s = txt @ img.T  # [texts, images]; small integers: exact in float32 whatever the summation order
    t2i_rank = [int(np.flatnonzero(np.argsort(-s[j], kind="stable") == t2i[j])[0]) + 1 for j in range(len(t2i))]
    best, ap = [], []
    for i in range(img.shape[0]):
        pos = np.flatnonzero(t2i == i)
        if len(pos):
            where = np.flatnonzero(np.isin(np.argsort(-s[:, i], kind="stable"), pos)) + 1
            best.append(where[0])
            ap.append(np.mean(np.arange(1, len(where) + 1) / where))
    return np.array(t2i_rank, dtype=float), np.array(best, dtype=float), np.array(ap)


@pytest.mark.parametrize("seed", range(12))
def test_ties_rank_by_index_like_a_stable_sort(seed, monkeypatch):
    # integer embeddings in {-1, 0, 1}^d give many exact ties (and zero vectors); every third case is a
    # collapsed model (all embeddings equal); n = 2 images with up to 40 captions takes the sparse
    # image -> text path. A tiny slab makes each block several slabs, split over threads.
    from polymodal_plugins.metrics import retrieval_scores
    monkeypatch.setattr(retrieval_scores, "SLAB_BYTES", 24)
    rng = np.random.default_rng(seed)
    n = 2 if seed % 4 == 1 else int(rng.integers(1, 25))
    m, d = int(rng.integers(1, 41)), int(rng.integers(1, 4))
    img = rng.integers(-1, 2, (n, d)).astype(np.float32)
    txt = rng.integers(-1, 2, (m, d)).astype(np.float32)
    if seed % 3 == 0:
        img[:], txt[:] = 1.0, 1.0
    t2i = rng.integers(0, n, m)
    t_rank, best, ap = _stable_ranks(img, txt, t2i)
    for chunk in (1, 3, 7, 4096):
        for threads in (1, 2, 3):
            _, per = retrieval_scores.retrieval_details(img, txt, t2i, ks=(1,), chunk_size=chunk, normalize=False,
                                                        threads=threads)
            assert np.array_equal(per["text_to_image_mean_rank"], t_rank), (chunk, threads)
            assert np.array_equal(per["image_to_text_mean_rank"], best), (chunk, threads)
            assert np.allclose(per["image_to_text_map"], ap), (chunk, threads)


def test_collapsed_model_scores_chance_not_perfect_recall():
    # every embedding equal: all scores tie. Ranked by index, text j's image i sits at rank i + 1, so
    # text -> image Recall@1 is the share of texts of image 0 (about chance), not 1.0
    n = 50
    t2i = np.repeat(np.arange(n), 2)
    r = retrieval_metrics(np.ones((n, 4)), np.ones((2 * n, 4)), t2i, ks=(1, 10))
    assert r["text_to_image_recall@1"] == pytest.approx(1 / n)
    assert r["text_to_image_recall@10"] == pytest.approx(10 / n)
    assert r["text_to_image_mean_rank"] == pytest.approx((n + 1) / 2)
