"""Benchmark: reading WebDataset shards, polymodal's readers vs a plain loop over the same shards.

Run: ``python tests/benchmarks/bench_webdataset.py [--shards 8] [--per-shard 1000] [--workers 0 2]``.
Writes the shards to a temporary folder, then prints samples/second of

* a plain loop: ``tarfile`` over each shard in turn, decoding every member
  (PNG with Pillow, text, label) -- the reference;
* :class:`StreamingShards` through a DataLoader with each worker count;
* the map-style ``webdataset`` dataset (index of tar headers, seek per
  sample) in index order, and the time its index takes to build;
* the streamed ``webdataset`` dataset (``streaming = true``: a counting
  pass, then batches through :func:`polymodal.streaming.batch_loader`, the
  path suites take) with each worker count, and its counting pass;

with the ratio to the reference, and checks that every reader produced
exactly the reference's sample ids (none dropped or repeated).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch.utils.data import DataLoader  # noqa: E402

from polymodal.streaming import batch_loader  # noqa: E402
from polymodal_plugins.datasets.webdataset import (  # noqa: E402
    StreamedShards,
    StreamingShards,
    WebDatasetShards,
    decode,
    kind_of,
    split_key,
)
from webdataset_shards import write_shards  # noqa: E402

FIELDS = {"image": "png", "text": "txt"}


def plain_loop(shards: list[Path]) -> list[str]:
    """The reference: one tarfile pass per shard, every member decoded as the readers do."""
    ids = []
    for path in shards:
        current = None
        with tarfile.open(path) as tar:
            for m in tar:
                key, ext = split_key(m.name)
                data = tar.extractfile(m).read()
                kind = kind_of(ext)
                if kind is not None:
                    decode(kind, data, m.name)
                else:
                    int(data)
                if key != current:
                    ids.append(f"{path.name}:{key}")
                    current = key
    return ids


def _ids(samples: list[dict]) -> list[str]:
    return [s["id"] for s in samples]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--per-shard", type=int, default=1000)
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_shards(Path(tmp), args.shards, args.per_shard, size=args.size)
        n = args.shards * args.per_shard
        plain_loop(shards)  # warm-up: file cache and imports, so that no reader pays them alone
        start = time.perf_counter()
        reference = plain_loop(shards)
        t_ref = time.perf_counter() - start
        print(f"{n} samples in {args.shards} shards, {args.size}x{args.size} PNG + caption + label")
        print(f"{'reader':<40}{'samples/s':>12}{'ratio vs plain':>16}{'ids match':>11}")
        print(f"{'plain tarfile loop (reference)':<40}{n / t_ref:>12,.0f}{1.0:>16.2f}{'-':>11}", flush=True)

        def report(name: str, seconds: float, ids: list[str]) -> None:
            ok = sorted(ids) == sorted(reference) and len(set(ids)) == len(ids)
            print(f"{name:<40}{n / seconds:>12,.0f}{t_ref / seconds:>16.2f}{str(ok):>11}", flush=True)
            rows.append({"benchmark": f"webdataset {name}, {n} samples", "ours": round(n / seconds, 1),
                         "alternative": round(n / t_ref, 1), "unit": "samples/s",
                         "alternative_name": "plain tarfile loop over the same shards", "ratio": round(t_ref / seconds, 3),
                         "ratio_means": "throughput ours / alternative", "goal": "every sample exactly once", "met": ok})

        for workers in args.workers:
            loader = DataLoader(StreamingShards(shards, FIELDS), batch_size=None, num_workers=workers,
                                collate_fn=lambda item: item)
            start = time.perf_counter()
            ids = [item["id"] for item in loader]
            report(f"streaming, {workers} workers", time.perf_counter() - start, ids)
        start = time.perf_counter()
        ds = WebDatasetShards(tmp, fields=FIELDS)
        t_index = time.perf_counter() - start
        print(f"map-style index of tar headers: {t_index:.2f} s ({n / t_index:,.0f} samples/s)")
        start = time.perf_counter()
        ids = [ds[i]["id"] for i in range(len(ds))]
        report("map-style, seek per sample", time.perf_counter() - start, ids)
        start = time.perf_counter()
        streamed = StreamedShards(tmp, fields=FIELDS)
        t_count = time.perf_counter() - start
        print(f"streamed counting pass: {t_count:.2f} s ({n / t_count:,.0f} samples/s)")
        batches = [list(range(i, min(n, i + 64))) for i in range(0, n, 64)]
        for workers in args.workers:
            loader = batch_loader(streamed, batches, _ids, num_workers=workers)
            start = time.perf_counter()
            ids = [i for batch in loader for i in batch]
            assert ids == reference, "the streamed reader must give the reference's order"
            report(f"streamed (suites), {workers} workers", time.perf_counter() - start, ids)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
