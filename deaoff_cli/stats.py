"""Small statistics shared by the evaluation and sweep reports."""
from __future__ import annotations

import math

import numpy as np


def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval (half-width NaN below two values)."""
    from scipy import stats

    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    if arr.size == 1:
        return float(arr[0]), float("nan")
    return float(arr.mean()), float(stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))
