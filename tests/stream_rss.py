"""Peak memory of reading a streamed dataset end to end; run as a subprocess by ``test_data_streaming``.

``python stream_rss.py READER ROOT MODE``: READER ``hf`` (``ROOT/data-*.parquet``)
or ``wds`` (``ROOT/*.tar``); MODE ``stream`` reads every sample through the
DataLoader path suites use, ``keep`` holds every decoded sample (the
materialising that streaming avoids, as a control that the measurement sees
memory grow). Prints one JSON line with sizes in MiB.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def peak_mib() -> float:
    """This process's peak resident memory: VmHWM, which exec resets (ru_maxrss keeps the parent's peak)."""
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def decoded_bytes(samples: list[dict]) -> int:
    import numpy as np

    return sum(np.asarray(s["image"]).nbytes for s in samples)


def main(reader: str, root: str, mode: str) -> None:
    import datasets  # noqa: F401 - imported before the baseline, like torch
    import torch  # noqa: F401

    from polymodal.plugins import build_plugin_manager
    from polymodal.streaming import batch_loader

    plugins = build_plugin_manager()
    imported = peak_mib()
    if reader == "hf":
        ds = plugins.build("datasets", "hf-datasets", path="parquet", root=root, split="train", streaming=True,
                           data_files={"train": "data-*.parquet"})
    else:
        ds = plugins.build("datasets", "webdataset", root=root, streaming=True)
    counted = peak_mib()
    n = len(ds)
    if mode == "stream":
        batches = [list(range(i, min(n, i + 32))) for i in range(0, n, 32)]
        total = sum(batch_loader(ds, batches, collate=decoded_bytes))
    else:
        kept = list(ds.iter_indices(range(n)))
        total = decoded_bytes(kept)
    print(json.dumps({"reader": reader, "mode": mode, "samples": n, "decoded_mib": total / 2**20,
                      "after_imports_mib": imported, "after_count_mib": counted, "peak_mib": peak_mib()}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
