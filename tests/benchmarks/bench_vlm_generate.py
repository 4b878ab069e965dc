"""VLM generation: polymodal's ``hf-vlm`` replies vs a hand-written transformers ``generate`` loop.

Same tiny random checkpoints (LLaVA and Qwen2-VL from ``tests/vlm_testkit.py``,
saved to a temporary folder), same images and questions, same batch size,
greedy decoding with the same ``max_new_tokens``. Ours is
:meth:`HFVLM.generate_replies` (chat template, left padding, the torch pixel
path, decoding); the hand-written loop applies the chat template, calls the
processor and ``model.generate`` per batch and decodes the new tokens. Runs
are interleaved after one untimed pass of each; the best of the repeats is
kept. Both must produce the same replies.

Times are the process's CPU time on one thread (``time.process_time``), the
best of the repeats: on the shared 2-core machine at a load average of 10-15,
wall-clock times of the same call swung 2-5x between repeats, while a
single-threaded run's CPU time is the work itself. Wall-clock figures are
printed alongside.

    python tests/benchmarks/bench_vlm_generate.py [--samples 32] [--batch 8] [--new-tokens 16] [--repeats 5]

Prints one JSON row per architecture, the last lines of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: vlm_testkit and models_testkit


def hand_written(model, processor, images, questions, batch: int, new_tokens: int) -> list[str]:
    """The loop a user writes from the transformers docs: template, processor, generate, decode."""
    tok = processor.tokenizer
    tok.padding_side = "left"
    replies = []
    for lo in range(0, len(questions), batch):
        prompts = [processor.apply_chat_template([{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": q}]}], add_generation_prompt=True, tokenize=False)
            for q in questions[lo:lo + batch]]
        inputs = processor(images=list(images[lo:lo + batch]), text=prompts, padding=True, return_tensors="pt",
                           do_rescale=False)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=tok.pad_token_id)
        replies.extend(t.strip() for t in tok.batch_decode(out[:, inputs["input_ids"].shape[1]:],
                                                           skip_special_tokens=True))
    return replies


def bench(arch: str, folder: Path, args: argparse.Namespace) -> dict:
    import models_testkit as kit

    from polymodal.experiment import experiment_from_dict
    from polymodal.model_api import FieldInfo, ModelContext, build_model

    cfg = experiment_from_dict({"data": {"dataset": "x"}, "model": {"name": "hf-vlm", "params": {
        "model": str(folder), "max_new_tokens": args.new_tokens, "batch_size": args.batch}}}, "bench.toml")
    ctx = ModelContext(kit.plugins(), {"image": FieldInfo("image", "image"), "text": FieldInfo("text", "text")},
                       {}, "bench.toml")
    ours_model = build_model(cfg.model, ctx)
    g = torch.Generator().manual_seed(0)
    images = list(torch.rand(args.samples, 3, 24, 24, generator=g))
    words = ["colour", "shape", "size", "count", "side", "texture", "light", "edge"]
    questions = [f"What {words[i % len(words)]} is object {i} in the picture?" for i in range(args.samples)]
    from transformers import AutoModelForImageTextToText, AutoProcessor

    ref_model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)

    def ours() -> list[str]:
        return ours_model.generate_replies(images, questions)

    def ref() -> list[str]:
        return hand_written(ref_model, processor, images, questions, args.batch, args.new_tokens)

    ours(), ref()  # warm-up: thread pools, allocator, first-call costs
    ours_s, ref_s = [], []
    for r in range(args.repeats):
        t, w = time.process_time(), time.perf_counter()
        want = ref()
        ref_s.append(time.process_time() - t)
        ref_wall = time.perf_counter() - w
        t, w = time.process_time(), time.perf_counter()
        got = ours()
        ours_s.append(time.process_time() - t)
        print(f"{arch} repeat {r + 1}: CPU s hand-written {ref_s[-1]:.3f}, polymodal {ours_s[-1]:.3f} "
              f"(wall {ref_wall:.2f} / {time.perf_counter() - w:.2f})", file=sys.stderr)
    same = got == want
    ours_rate, ref_rate = args.samples / min(ours_s), args.samples / min(ref_s)
    ratio = ours_rate / ref_rate
    print(f"{arch}: polymodal {ours_rate:.1f} replies/s, hand-written {ref_rate:.1f} replies/s, ratio {ratio:.3f}, "
          f"same replies: {same}", file=sys.stderr)
    return {"benchmark": f"VLM generation, tiny {arch}, {args.samples} prompts, batch {args.batch}, "
                         f"{args.new_tokens} new tokens",
            "ours": round(ours_rate, 2), "alternative": round(ref_rate, 2), "unit": "replies per CPU s",
            "alternative_name": "hand-written transformers generate loop", "ratio": round(ratio, 3),
            "ratio_means": "throughput ours / alternative", "max_abs_diff": 0.0 if same else None,
            "goal": "ratio >= 0.95, same replies", "met": bool(ratio >= 0.95 and same)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arch", nargs="+", default=["llava", "qwen2-vl"])
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from vlm_testkit import save_tiny_llava, save_tiny_qwen2_vl

    makers = {"llava": save_tiny_llava, "qwen2-vl": save_tiny_qwen2_vl}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            rows.append(bench(arch, makers[arch](Path(tmp) / arch), args))
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
