"""Start-up cost: `polymodal plugins` versus `python -c "import torch"`, same run.

Goal: listing plugins costs under a quarter of importing torch, because no
plugin imports anything heavy until a component is built. Prints a JSON row
on the last line so the benchmark suite can collect it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(repeat: int = 5) -> dict[str, float]:
    py = sys.executable
    wall([py, "-c", "import torch"], 1)  # warm the page cache for both
    plugins = wall([py, "-m", "polymodal", "plugins"], repeat)
    listing = wall([py, "-m", "polymodal", "list"], repeat)
    torch_import = wall([py, "-c", "import torch"], repeat)
    row = {
        "benchmark": "start-up: polymodal plugins",
        "polymodal_plugins_s": round(plugins, 3),
        "polymodal_list_s": round(listing, 3),
        "import_torch_s": round(torch_import, 3),
        "ours": round(plugins, 3),
        "alternative": round(torch_import, 3),
        "unit": "s",
        "alternative_name": "python -c 'import torch'",
        "ratio": round(plugins / torch_import, 3),
        "ratio_means": "time ours / alternative",
        "max_abs_diff": None,
        "goal": "ratio < 0.25",
        "met": plugins / torch_import < 0.25,
        "goal_ratio": 0.25,
    }
    print(f"polymodal plugins: {plugins:.3f}s  polymodal list: {listing:.3f}s  "
          f"import torch: {torch_import:.3f}s  ratio {row['ratio']:.2f} (goal < 0.25)")
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
