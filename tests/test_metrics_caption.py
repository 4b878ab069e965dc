"""Caption metrics against golden values from coco-caption (pycocoevalcap + Java PTBTokenizer).

The numbers below were produced by ``tests/benchmarks/make_golden_metrics.py``
with the reference tools; only the numbers are checked in.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from polymodal_plugins.metrics.caption import BLEU, CIDErD, CaptionScores, ROUGEL
from polymodal_plugins.metrics.caption_scores import bleu, cider_d, lcs_length, rouge_l
from polymodal_plugins.metrics.ptb_tokenize import tokenize_caption

# (candidate, references): edge cases on purpose
CORPUS: list[tuple[str, list[str]]] = [
    ("A man riding a wave on top of a surfboard.",
     ["A surfer rides a large wave in the ocean.", "A man on a surfboard riding a wave.",
      "Man surfing on a wave in the sea", "a person on a surf board riding a wave", "A surfer in the ocean."]),
    ("dog", ["A dog runs across the grass.", "a brown dog running", "The dog is playing in a field."]),
    ("a cat a cat a cat a cat", ["A cat sits on the couch.", "a cat", "Two cats on a sofa."]),
    ("Un café à Zürich, très naïve — ünïcödé 北京!",
     ["A café in Zürich.", "People drinking café au lait in a naïve town", "北京 street scene"]),
    ("2 giraffes standing near 3 trees in 1999.",
     ["Two giraffes stand by trees.", "2 giraffes next to 3 trees", "giraffes at the zoo in 1999, 10:30 am"]),
    ("... !!! ???", ["A red stop sign.", "a stop sign on a pole", "The sign says STOP."]),
    ("The man's dog isn't (really) running on the \"beach\".",
     ["A man's dog runs on the beach.", "The dog isn't running; it's walking.", "a dog on the sand"]),
    ("a plate of food with broccoli and rice",
     ["A plate of food with broccoli, rice and chicken.", "food on a plate", "a white plate with rice and broccoli",
      "Broccoli and rice on a plate.", "A meal of rice and vegetables."]),
    ("a red-and-white sign that says 50% off at 5:30pm",
     ["A sign advertising 50% off.", "a red and white sale sign", "a store sign at night"]),
    ("two people", ["Two people walking.", "two people", "a couple"]),
    ("a bus", ["A city bus driving down the street.", "a bus on the road in the city", "a large bus"]),
    ("a man and a woman sitting on a bench in the park",
     ["A man and a woman sit on a park bench.", "two people sitting on a bench", "A couple on a bench in a park."]),
]

TOKENIZED_CANDIDATES: list[str] = ["a man riding a wave on top of a surfboard", "dog", "a cat a cat a cat a cat", "un café à zürich très naïve ünïcödé 北京", "2 giraffes standing near 3 trees in 1999", "!!! ???", "the man 's dog is n't -lrb- really -rrb- running on the beach", "a plate of food with broccoli and rice", "a red-and-white sign that says 50 % off at 5:30 pm", "two people", "a bus", "a man and a woman sitting on a bench in the park"]
TOKENIZED_REFERENCES: list[list[str]] = [["a surfer rides a large wave in the ocean", "a man on a surfboard riding a wave", "man surfing on a wave in the sea", "a person on a surf board riding a wave", "a surfer in the ocean"], ["a dog runs across the grass", "a brown dog running", "the dog is playing in a field"], ["a cat sits on the couch", "a cat", "two cats on a sofa"], ["a café in zürich", "people drinking café au lait in a naïve town", "北京 street scene"], ["two giraffes stand by trees", "2 giraffes next to 3 trees", "giraffes at the zoo in 1999 10:30 am"], ["a red stop sign", "a stop sign on a pole", "the sign says stop"], ["a man 's dog runs on the beach", "the dog is n't running it 's walking", "a dog on the sand"], ["a plate of food with broccoli rice and chicken", "food on a plate", "a white plate with rice and broccoli", "broccoli and rice on a plate", "a meal of rice and vegetables"], ["a sign advertising 50 % off", "a red and white sale sign", "a store sign at night"], ["two people walking", "two people", "a couple"], ["a city bus driving down the street", "a bus on the road in the city", "a large bus"], ["a man and a woman sit on a park bench", "two people sitting on a bench", "a couple on a bench in a park"]]
GOLDEN_CORPUS: dict[str, float] = {'bleu_1': 0.6941176470506574, 'bleu_2': 0.5601599863487866, 'bleu_3': 0.43263085143207003, 'bleu_4': 0.3200841614744932, 'rouge_l': 0.5718547081975957, 'cider': 1.4133794496148342}
GOLDEN_PER_IMAGE_CIDER: list[float] = [1.381777027107029, 0.8176245196600971, 0.4156147857270881, 0.6882778075739913, 1.4132583810879675, 0.0, 1.3252404038668895, 2.984207125241861, 0.7495989950231536, 2.7247090559707443, 1.4295615563012076, 3.0306837378179816]
GOLDEN_PER_IMAGE_ROUGE: list[float] = [0.5669144981412639, 0.3609467455621302, 0.4485294117647059, 0.3546511627906977, 0.5865384615384615, 0.0, 0.5970636215334422, 0.8148854961832059, 0.6211812627291243, 1.0, 0.7721518987341772, 0.7393939393939394]
GOLDEN_PER_IMAGE_BLEU4: list[float] = [5.019724248194722e-05, 1.5744053386817196e-06, 5.873949093767425e-09, 1.0962279403155601e-12, 1.0173978270206596e-08, 9.782458604202842e-12, 5.543058125670025e-05, 0.8408964151203225, 3.508439695264144e-05, 0.0009999999991250007, 0.0006065306591819196, 0.649335830887642]

CANDIDATES = [c for c, _ in CORPUS]
REFERENCES = [r for _, r in CORPUS]


def test_tokenizer_matches_coco_caption_ptb_tokenizer():
    assert [tokenize_caption(c) for c in CANDIDATES] == TOKENIZED_CANDIDATES
    assert [[tokenize_caption(r) for r in refs] for refs in REFERENCES] == TOKENIZED_REFERENCES


@pytest.mark.parametrize("text, expected", [
    ("Hello   World.", "hello world"),
    ("...", ""),
    ("(a)", "-lrb- a -rrb-"),  # coco-caption only removes upper-case -LRB-
    ("I can't, won't!", "i ca n't wo n't"),
    ("“curly” ‘single’ … ok", "curly single ok"),
    ("-5 and +3 at 3.5", "-5 and +3 at 3.5"),
])
def test_tokenizer_edge_cases(text, expected):
    assert tokenize_caption(text) == expected


def test_scorers_match_golden_values_per_image_and_corpus():
    b = bleu(TOKENIZED_CANDIDATES, TOKENIZED_REFERENCES)
    for k in range(4):
        assert b.corpus[k] == pytest.approx(GOLDEN_CORPUS[f"bleu_{k + 1}"], abs=1e-9)
    np.testing.assert_allclose(b.per_image[:, 3], GOLDEN_PER_IMAGE_BLEU4, rtol=0, atol=1e-9)
    rouge = [rouge_l(c, r) for c, r in zip(TOKENIZED_CANDIDATES, TOKENIZED_REFERENCES)]
    np.testing.assert_allclose(rouge, GOLDEN_PER_IMAGE_ROUGE, rtol=0, atol=1e-9)
    cider = cider_d(TOKENIZED_CANDIDATES, TOKENIZED_REFERENCES)
    np.testing.assert_allclose(cider, GOLDEN_PER_IMAGE_CIDER, rtol=0, atol=1e-9)
    assert cider.mean() == pytest.approx(GOLDEN_CORPUS["cider"], abs=1e-9)


def test_metric_from_raw_captions_matches_golden_to_1e6():
    m = CaptionScores()
    m.update(CANDIDATES, REFERENCES)
    got = {k: float(v) for k, v in m.compute().items()}
    assert got.keys() == GOLDEN_CORPUS.keys()
    for k, v in GOLDEN_CORPUS.items():
        assert abs(got[k] - v) < 1e-6, k
    summary, per_image = m.compute_per_image()
    assert [round(p["cider"], 9) for p in per_image] == [round(x, 9) for x in GOLDEN_PER_IMAGE_CIDER]


def test_single_metric_classes_agree_with_golden():
    metrics = {"bleu": BLEU(), "rouge": ROUGEL(), "cider": CIDErD()}
    for m in metrics.values():
        m.update(CANDIDATES, REFERENCES)
    assert float(metrics["bleu"].compute()["bleu_4"]) == pytest.approx(GOLDEN_CORPUS["bleu_4"], abs=1e-9)
    assert float(metrics["rouge"].compute()) == pytest.approx(GOLDEN_CORPUS["rouge_l"], abs=1e-9)
    assert float(metrics["cider"].compute()) == pytest.approx(GOLDEN_CORPUS["cider"], abs=1e-9)


def test_cider_is_a_corpus_statistic_three_batches_equal_one_pass():
    one = CIDErD()
    one.update(CANDIDATES, REFERENCES)
    three = CIDErD()
    for lo, hi in [(0, 5), (5, 7), (7, len(CORPUS))]:
        three.update(CANDIDATES[lo:hi], REFERENCES[lo:hi])
    assert float(three.compute()) == float(one.compute())
    # the naive per-batch average is different: document frequencies need the whole corpus
    per_batch = np.mean([float(cider_d(TOKENIZED_CANDIDATES[lo:hi], TOKENIZED_REFERENCES[lo:hi]).mean())
                         for lo, hi in [(0, 6), (6, 12)]])
    assert abs(per_batch - float(one.compute())) > 1e-3
    three.reset()
    three.update(CANDIDATES[:2], REFERENCES[:2])
    assert float(three.compute()) != float(one.compute())


def _worker(rank: int, world: int, port: int, queue) -> None:
    from dist_launch import torchrun_env
    from dist_workers import assert_group_threads_joined, native_threads
    from polymodal.distributed import distributed_context

    torch.set_num_threads(1)
    before = native_threads()  # torchmetrics (which starts a thread) is imported by this module already
    os.environ.update(torchrun_env(rank, world, port))
    with distributed_context("cpu"):
        m = CaptionScores()
        # uneven shards: rank 0 gets 7 images in two batches, rank 1 gets 5
        idx = list(range(0, 7)) if rank == 0 else list(range(7, 12))
        for part in (idx[:3], idx[3:]):
            m.update([CANDIDATES[i] for i in part], [REFERENCES[i] for i in part])
        out = {k: float(v) for k, v in m.compute().items()}
        if rank == 0:
            queue.put(out)
    assert_group_threads_joined(rank, before)


@pytest.mark.e2e
def test_cider_under_two_processes_equals_single_pass():
    import torch.multiprocessing as mp
    from dist_launch import free_port

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(2, free_port(), queue), nprocs=2, join=True, start_method="spawn")
    got = queue.get()
    for k, v in GOLDEN_CORPUS.items():
        assert abs(got[k] - v) < 1e-9, k


def test_lcs_bit_parallel_equals_dynamic_programming():
    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
        assert lcs_length(a, b) == table[-1][-1]


def test_bad_updates_raise():
    m = CIDErD()
    with pytest.raises(ValueError, match="one prediction per image"):
        m.update(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="non-empty list"):
        m.update(["a"], [[]])
