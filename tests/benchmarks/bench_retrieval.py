"""Retrieval Recall@K: our bounded-memory ranking vs a straightforward full-matrix computation.

    python tests/benchmarks/bench_retrieval.py [--images 5000 --texts 25000]
        [--scale-images 100000 --scale-texts 500000] [--dim 256] [--skip-scale]

Row 1, at a size where the full similarity matrix fits in memory: our
``retrieval_metrics`` vs materialising ``texts x images`` scores and taking
``torch.topk`` per query (CLIP_benchmark's way of scoring Recall@K), with the
maximum difference over Recall@1/5/10 in both directions (they must agree).
Row 2, at a scale the full matrix cannot reach (100,000 x 500,000 float32
scores would be 186 GiB): wall time and the peak resident memory of this
process, the embeddings included. Embeddings are synthetic: every text is
its image's vector plus Gaussian noise (5 captions per image), noisy enough
that Recall@1 is far from 1. The last lines are one JSON object per row.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import torch

from polymodal_plugins.metrics.retrieval import retrieval_metrics

KS = (1, 5, 10)


def embeddings(n_images: int, n_texts: int, dim: int, noise: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n_images, dim, generator=g)
    t2i = torch.arange(n_texts) % n_images
    txt = img[t2i] + noise * torch.randn(n_texts, dim, generator=g)
    return img, txt, t2i


def full_matrix_recall(img: torch.Tensor, txt: torch.Tensor, t2i: torch.Tensor) -> dict[str, float]:
    """The textbook computation: all scores at once, top-K indices per query, a hit if a positive is among them."""
    img = torch.nn.functional.normalize(img, dim=-1)
    txt = torch.nn.functional.normalize(txt, dim=-1)
    scores = txt @ img.T  # [texts, images]
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(t2i)), t2i] = True
    out = {}
    for name, s, pos in (("text_to_image", scores, positive), ("image_to_text", scores.T, positive.T)):
        top = torch.topk(s, max(KS), dim=1).indices
        hit = pos.gather(1, top)
        for k in KS:
            out[f"{name}_recall@{k}"] = float(hit[:, :k].any(dim=1).double().mean())
    return out


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compare(n_images: int, n_texts: int, dim: int, noise: float, chunk: int, threads: int) -> dict:
    img, txt, t2i = embeddings(n_images, n_texts, dim, noise)
    t = time.perf_counter()
    ours = retrieval_metrics(img, txt, t2i, ks=KS, chunk_size=chunk, threads=threads)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = full_matrix_recall(img, txt, t2i)
    t_ref = time.perf_counter() - t
    diff = max(abs(ours[k] - ref[k]) for k in ref)
    print(f"retrieval {n_images} x {n_texts}, D={dim}: ours {t_ours:.2f} s, full matrix + topk {t_ref:.2f} s, "
          f"speed-up {t_ref / t_ours:.2f}x, max |diff| Recall@K {diff:.1e}; "
          f"R@1 t->i {ours['text_to_image_recall@1']:.4f} i->t {ours['image_to_text_recall@1']:.4f}", file=sys.stderr)
    return {"benchmark": f"retrieval Recall@K, {n_images:,} x {n_texts:,}, D={dim}",
            "ours": round(t_ours, 3), "alternative": round(t_ref, 3), "unit": "s",
            "alternative_name": "full score matrix + torch.topk",
            "ratio": round(t_ref / t_ours, 2), "ratio_means": "speed-up (alternative time / ours)",
            "max_abs_diff": diff, "goal": "identical values", "met": diff == 0.0}


def matmul_floor(img: torch.Tensor, txt: torch.Tensor, chunk: int) -> float:
    """Seconds for the matrix products alone, over the same ``chunk x chunk`` blocks: no ranking can beat this."""
    a = img.numpy() / np.linalg.norm(img.numpy(), axis=1, keepdims=True)
    b = txt.numpy() / np.linalg.norm(txt.numpy(), axis=1, keepdims=True)
    buf = np.empty((min(chunk, len(a)), min(chunk, len(b))), dtype=np.float32)
    t = time.perf_counter()
    for t0 in range(0, len(b), chunk):
        block = np.ascontiguousarray(b[t0:t0 + chunk].T)
        for i0 in range(0, len(a), chunk):
            rows = a[i0:i0 + chunk]
            np.matmul(rows, block, out=buf[: len(rows), : block.shape[1]])
    return time.perf_counter() - t


def scale(n_images: int, n_texts: int, dim: int, noise: float, chunk: int, threads: int) -> dict:
    img, txt, t2i = embeddings(n_images, n_texts, dim, noise)
    before = peak_rss_mib()
    t = time.perf_counter()
    out = retrieval_metrics(img, txt, t2i, ks=KS, chunk_size=chunk, progress=True, threads=threads)
    seconds = time.perf_counter() - t
    peak = peak_rss_mib()
    inputs_mib = (img.numel() + txt.numel()) * 4 / 2**20
    full_gib = n_images * n_texts * 4 / 2**30
    # bound: inputs, their normalised copies, one chunk x chunk score block and its mask per thread, + the interpreter
    bound = 2 * inputs_mib + threads * chunk * chunk * 5 / 2**20 + before - inputs_mib + 256
    floor = matmul_floor(img, txt, chunk)
    ratio = seconds / floor
    print(f"retrieval at scale {n_images} x {n_texts}, D={dim}, chunk {chunk}: {seconds:.1f} s, matmul floor "
          f"{floor:.1f} s ({ratio:.2f}x), peak RSS {peak:.0f} MiB "
          f"(embeddings {inputs_mib:.0f} MiB; bound {bound:.0f} MiB; a full float32 matrix: {full_gib:.0f} GiB); "
          + ", ".join(f"{k}={v:.4f}" for k, v in out.items() if "recall@1" in k), file=sys.stderr)
    return {"benchmark": f"retrieval at scale, {n_images:,} x {n_texts:,}, D={dim}",
            "ours": round(seconds, 1), "alternative": round(floor, 1), "unit": "s",
            "alternative_name": f"matrix products alone, same {chunk} x {chunk} blocks (the floor; a full float32 "
                                f"score matrix would be {full_gib:,.1f} GiB)",
            "ratio": round(ratio, 2), "ratio_means": "time ours / floor", "max_abs_diff": None,
            "peak_rss_mib": round(peak), "memory_bound_mib": round(bound),
            "pairs_per_s": round(n_images * n_texts / seconds),
            "goal": f"ratio <= 1.5, peak RSS within {bound:.0f} MiB", "met": ratio <= 1.5 and peak <= bound}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=5_000)
    p.add_argument("--texts", type=int, default=25_000)
    p.add_argument("--scale-images", type=int, default=100_000)
    p.add_argument("--scale-texts", type=int, default=500_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--noise", type=float, default=4.0, help="text = image + noise * N(0, 1) before normalising")
    p.add_argument("--chunk", type=int, default=2048)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-scale", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [compare(args.images, args.texts, args.dim, args.noise, args.chunk, args.threads)]
    if not args.skip_scale:
        rows.append(scale(args.scale_images, args.scale_texts, args.dim, args.noise, args.chunk, args.threads))
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
