"""Regenerate the golden numbers in tests/test_metrics_*.py with the reference tools.

Run ``python tests/benchmarks/make_golden_metrics.py``; needs the ``bench`` extra
(pycocoevalcap, torch-fidelity) and Java for coco-caption's PTBTokenizer. It
prints the values to paste into the tests; nothing here runs in the test suite.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

sys.path.insert(0, "tests")
from test_metrics_caption import CORPUS  # noqa: E402  (the fixed inputs live in the test)
from test_metrics_fidelity import fidelity_inputs  # noqa: E402


def caption_golden() -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": r} for r in refs] for i, (_, refs) in enumerate(CORPUS)}
    res = {i: [{"caption": c}] for i, (c, _) in enumerate(CORPUS)}
    tok = PTBTokenizer()
    gts_t, res_t = tok.tokenize(gts), tok.tokenize(res)
    print("TOKENIZED_CANDIDATES =", json.dumps([res_t[i][0] for i in range(len(CORPUS))], ensure_ascii=False))
    print("TOKENIZED_REFERENCES =", json.dumps([gts_t[i] for i in range(len(CORPUS))], ensure_ascii=False))
    b, b_img = Bleu(4).compute_score(gts_t, res_t, verbose=0)
    r, r_img = Rouge().compute_score(gts_t, res_t)
    c, c_img = Cider().compute_score(gts_t, res_t)
    print("GOLDEN_CORPUS =", repr({"bleu_1": b[0], "bleu_2": b[1], "bleu_3": b[2], "bleu_4": b[3],
                                   "rouge_l": float(r), "cider": float(c)}))
    print("GOLDEN_PER_IMAGE_CIDER =", repr([float(x) for x in c_img]))
    print("GOLDEN_PER_IMAGE_ROUGE =", repr([float(x) for x in r_img]))
    print("GOLDEN_PER_IMAGE_BLEU4 =", repr([float(x) for x in b_img[3]]))


def fidelity_golden() -> None:
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake, logits = fidelity_inputs()
    fid = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(real)),
                                   fid_features_to_statistics(torch.from_numpy(fake)), verbose=False)
    kid = kid_features_to_metric(torch.from_numpy(real), torch.from_numpy(fake), kid_subsets=10,
                                 kid_subset_size=50, verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3,
                                 kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, rng_seed=2020)
    isc = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=True, rng_seed=2020)
    print("GOLDEN_FIDELITY =", repr({"fid": fid["frechet_inception_distance"],
                                     "kid_mean": kid["kernel_inception_distance_mean"],
                                     "kid_std": kid["kernel_inception_distance_std"],
                                     "is_mean": isc["inception_score_mean"], "is_std": isc["inception_score_std"]}))


if __name__ == "__main__":
    np.set_printoptions(precision=17)
    caption_golden()
    fidelity_golden()
