"""Whole-process scoring: ``polymodal score ...`` vs the reference tool's own script, start-up included.

    python tests/benchmarks/bench_score_process.py [--images 5000] [--refs 5] [--samples 2000] [--dim 256]
        [--retrieval-images 2000] [--retrieval-texts 10000] [--repeats 3]

What a user pays for one score of files is the whole process: interpreter
start-up, imports, reading the files, the arithmetic. Each row runs our CLI
and a short script around the reference tool on the same files, each
``--repeats`` times, interleaved, and reports the medians:

* captions: pycocoevalcap's Bleu(4), Rouge and Cider on the COCO JSON files
  (captions already tokenised, so the reference skips its Java tokenizer
  while ours still runs its PTB rules: the harder comparison);
* retrieval: the full score matrix and ``torch.topk`` (CLIP_benchmark's way),
  Recall@1/5/10 both directions;
* fid / kid / is: torch-fidelity's ``*_features_to_metric`` on the ``.npy`` features.

Every row also prints the max |difference| between the two processes' numbers;
a row whose numbers differ is a failure. The last lines are one JSON object per
row (see ``run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_metrics import _captions  # noqa: E402  (same synthetic corpus as the in-process rows)

REF_CAPTIONS = r"""
import json, sys
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
ann = json.load(open(sys.argv[1])); res = json.load(open(sys.argv[2]))
gts, preds = {}, {}
for a in ann["annotations"]:
    gts.setdefault(a["image_id"], []).append(a["caption"])
for r in res:
    preds[r["image_id"]] = [r["caption"]]
b, _ = Bleu(4).compute_score(gts, preds, verbose=0)
r, _ = Rouge().compute_score(gts, preds)
c, _ = Cider().compute_score(gts, preds)
out = {f"bleu_{i + 1}": v for i, v in enumerate(b)}
out.update(rouge_l=float(r), cider=float(c))
print(json.dumps(out))
"""

REF_RETRIEVAL = r"""
import json, sys
import numpy as np, torch
img = torch.nn.functional.normalize(torch.from_numpy(np.load(sys.argv[1])), dim=-1)
txt = torch.nn.functional.normalize(torch.from_numpy(np.load(sys.argv[2])), dim=-1)
t2i = torch.from_numpy(np.load(sys.argv[3]))
scores = txt @ img.T
positive = torch.zeros_like(scores, dtype=torch.bool)
positive[torch.arange(len(t2i)), t2i] = True
out = {}
for name, s, pos in (("text_to_image", scores, positive), ("image_to_text", scores.T, positive.T)):
    hit = pos.gather(1, torch.topk(s, 10, dim=1).indices)
    for k in (1, 5, 10):
        out[f"{name}_recall@{k}"] = float(hit[:, :k].any(dim=1).double().mean())
print(json.dumps(out))
"""

REF_FIDELITY = r"""
import json, sys
import numpy as np, torch
kind = sys.argv[1]
if kind == "is":
    from torch_fidelity.metric_isc import isc_features_to_metric
    r = isc_features_to_metric(torch.from_numpy(np.load(sys.argv[2])))
    print(json.dumps({"is_mean": r["inception_score_mean"], "is_std": r["inception_score_std"]}))
elif kind == "fid":
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    a, b = (torch.from_numpy(np.load(p)) for p in sys.argv[2:4])
    r = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    print(json.dumps({"fid": r["frechet_inception_distance"]}))
else:
    from torch_fidelity.metric_kid import kid_features_to_metric
    a, b = (torch.from_numpy(np.load(p)) for p in sys.argv[2:4])
    r = kid_features_to_metric(a, b, kid_subsets=100, kid_subset_size=int(sys.argv[4]), verbose=False,
                               kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                               kid_kernel_poly_coef0=1, rng_seed=2020)
    print(json.dumps({"kid_mean": r["kernel_inception_distance_mean"], "kid_std": r["kernel_inception_distance_std"]}))
"""


def run(cmd: list[str]) -> tuple[dict, float]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), seconds


def compare(name: str, ours_cmd: list[str], ref_cmd: list[str], alt: str, goal: float, repeats: int) -> dict:
    t_ours, t_ref = [], []
    for _ in range(repeats):  # interleaved, so load swings hit both sides alike
        ours, t = run(ours_cmd)
        t_ours.append(t)
        ref, t = run(ref_cmd)
        t_ref.append(t)
    diff = max(abs(float(ours[k]) - float(v)) for k, v in ref.items())
    mo, mr = statistics.median(t_ours), statistics.median(t_ref)
    ratio = mo / mr
    print(f"{name}: ours {mo:.2f} s, {alt} {mr:.2f} s, ratio {ratio:.2f}, max |diff| {diff:.1e}", file=sys.stderr)
    return {"benchmark": name, "ours": round(mo, 3), "alternative": round(mr, 3), "unit": "s",
            "alternative_name": alt, "ratio": round(ratio, 3), "ratio_means": "time ours / alternative, whole process",
            "max_abs_diff": diff, "goal": f"ratio <= {goal:g}, |diff| <= 1e-9", "met": ratio <= goal and diff <= 1e-9}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--refs", type=int, default=5)
    p.add_argument("--samples", type=int, default=2000, help="feature rows for fid/kid/is")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--retrieval-images", type=int, default=2000)
    p.add_argument("--retrieval-texts", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    py = sys.executable
    ours = [py, "-m", "polymodal", "score"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cands, refs = _captions(args.images, args.refs)
        ann = {"annotations": [{"image_id": i, "caption": r} for i, rs in enumerate(refs) for r in rs]}
        (d / "ann.json").write_text(json.dumps(ann))
        (d / "res.json").write_text(json.dumps([{"image_id": i, "caption": c} for i, c in enumerate(cands)]))
        rows.append(compare(f"whole process: score captions, {args.images} images x {args.refs} refs",
                            ours + ["captions", "--references", str(d / "ann.json"), "--predictions", str(d / "res.json")],
                            [py, "-c", REF_CAPTIONS, str(d / "ann.json"), str(d / "res.json")],
                            "pycocoevalcap Bleu+Rouge+Cider script", 0.5, args.repeats))

        rng = np.random.default_rng(0)
        n, m = args.retrieval_images, args.retrieval_texts
        img = rng.standard_normal((n, args.dim), dtype=np.float32)
        t2i = np.arange(m) % n
        np.save(d / "img.npy", img)
        np.save(d / "txt.npy", img[t2i] + 1.5 * rng.standard_normal((m, args.dim), dtype=np.float32))
        np.save(d / "t2i.npy", t2i)
        rows.append(compare(f"whole process: score retrieval, {n:,} x {m:,}, D={args.dim}",
                            ours + ["retrieval", "--image-embeddings", str(d / "img.npy"), "--text-embeddings",
                                    str(d / "txt.npy"), "--text-to-image", str(d / "t2i.npy")],
                            [py, "-c", REF_RETRIEVAL, str(d / "img.npy"), str(d / "txt.npy"), str(d / "t2i.npy")],
                            "full matrix + torch.topk script", 1.0, args.repeats))

        k = args.samples
        np.save(d / "real.npy", rng.normal(size=(k, args.dim)))
        np.save(d / "gen.npy", rng.normal(0.05, 1.1, size=(k, args.dim)))
        np.save(d / "logits.npy", rng.normal(scale=3, size=(k, 1008)))
        subset = min(1000, k)
        feats = ["--real", str(d / "real.npy"), "--generated", str(d / "gen.npy")]
        for kind, extra, ref_args in (
            ("fid", feats, [str(d / "real.npy"), str(d / "gen.npy")]),
            ("kid", feats + ["--subset-size", str(subset)], [str(d / "real.npy"), str(d / "gen.npy"), str(subset)]),
            ("is", ["--logits", str(d / "logits.npy")], [str(d / "logits.npy")]),
        ):
            size = f"{k} x 1008 logits" if kind == "is" else f"{k} x {args.dim}"
            rows.append(compare(f"whole process: score {kind}, {size}", ours + [kind, *extra],
                                [py, "-c", REF_FIDELITY, kind, *ref_args], "torch-fidelity script", 1.0, args.repeats))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
