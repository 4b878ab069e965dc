"""Summary figures of a performance-vs-severity curve.

``auc_relative``: the area under the curve from severity 0 (clean) to the
highest severity, by the trapezoid rule, divided by the area a model that
never degrades would have (``clean * max_severity``). 1.0 means unaffected;
0.5 means half the performance lost on average over the range. Values above
1 mean the corruption *helped*.

``corruption_error``: mean error (1 - performance) over the severities, the
per-corruption term of Hendrycks & Dietterich's CE before baseline
normalisation; ``relative_corruption_error`` subtracts the clean error (their
"relative CE" numerator); ``ce_ratio`` divides the mean error by the clean
error (how many times more mistakes), undefined when clean error is zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class CurveSummary:
    auc_relative: float | None
    corruption_error: float
    relative_corruption_error: float
    ce_ratio: float | None


def summarise(clean: float, severities: Sequence[int], values: Sequence[float]) -> CurveSummary:
    """Summary of the curve ``values[i]`` at ``severities[i]`` with clean performance ``clean``."""
    if len(severities) != len(values) or not severities:
        raise ValueError("summarise: need one value per severity, at least one")
    points = sorted(zip(severities, values, strict=True))
    xs = [0.0] + [float(s) for s, _ in points]
    ys = [float(clean)] + [float(v) for _, v in points]
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    ideal = float(clean) * xs[-1]
    errors = [1.0 - v for v in ys[1:]]
    clean_error = 1.0 - float(clean)
    mean_error = sum(errors) / len(errors)
    return CurveSummary(
        auc_relative=area / ideal if ideal > 0 else None,
        corruption_error=mean_error,
        relative_corruption_error=mean_error - clean_error,
        ce_ratio=mean_error / clean_error if clean_error > 1e-12 else None,
    )
