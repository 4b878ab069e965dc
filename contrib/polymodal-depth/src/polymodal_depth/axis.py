"""``range-estimation``: how well a model serving ``estimate-range`` estimates distance.

Rows: ``mae_m`` and ``rmse_m`` (metres, lower is better) and
``within_10pct`` (share of samples whose estimate is within 10% of the true
distance, higher is better), on the suite's evaluation split. Sums are
reduced across ranks, so ``torchrun`` gives the single-process figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from polymodal import ConfigError
from polymodal.evaluation import AxisContext, EvalData
from polymodal.results import ResultRow


class RangeAxis:
    """Distance-estimation errors (see module docs)."""

    requires = frozenset({"estimate-range"})

    def __init__(self, target: str = "distance", split: str | None = None, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ConfigError(f"axis range-estimation: batch_size must be >= 1, got {batch_size}")
        self.target, self.split, self.batch_size = target, split, int(batch_size)

    def run(self, model: Any, data: EvalData, ctx: AxisContext) -> Iterator[ResultRow]:
        import torch

        split = self.split or ctx.split
        if split not in data.splits:
            raise ConfigError(f"axis range-estimation: split: no split {split!r} (have: {', '.join(data.splits)})")
        dataset = data.splits[split]
        mine = list(ctx.shard(ctx.limited(len(dataset))))
        abs_sum = sq_sum = within = 0.0
        for start in range(0, len(mine), self.batch_size):
            idx = mine[start:start + self.batch_size]
            batch = data.collate([dataset[i] for i in idx]).to(ctx.device)
            if self.target not in batch.targets:
                raise ConfigError(f"axis range-estimation: target: the data has no target {self.target!r} "
                                  f"(targets: {', '.join(batch.targets)})")
            with torch.no_grad():
                guess = model.estimate_range(batch).double().cpu()
            truth = batch.targets[self.target].double().cpu()
            err = (guess - truth).abs()
            abs_sum += float(err.sum())
            sq_sum += float((err ** 2).sum())
            within += float((err <= 0.1 * truth.abs()).sum())
            ctx.progress(start + len(idx), len(mine), f"range-estimation {split}")
        abs_sum, sq_sum, within, n = ctx.all_reduce_sum([abs_sum, sq_sum, within, float(len(mine))])
        if not n:
            return
        extra = {"samples": int(n), "target": self.target}
        yield ctx.row("mae_m", abs_sum / n, extra={**extra, "higher_is_better": False}, task="range")
        yield ctx.row("rmse_m", math.sqrt(sq_sum / n), extra={**extra, "higher_is_better": False}, task="range")
        yield ctx.row("within_10pct", within / n, extra={**extra, "higher_is_better": True}, task="range")
