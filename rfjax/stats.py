"""Shared statistics for summaries: log-linear rates with bootstrap intervals, quantiles."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np


class Rate(NamedTuple):
  """slope of log(stat(values)) against x, with a bootstrap interval [lo, hi] at `level`."""
  slope: float
  lo: float
  hi: float
  level: float
  num_points: int


def log_slope(x: Sequence[float], y: Sequence[float]) -> float:
  """Least-squares slope of log y against x (y > 0)."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.size < 2 or np.any(y <= 0):
    return float("nan")
  return float(np.polyfit(x, np.log(y), 1)[0])


def loglinear_rate(x: Sequence[float], groups: Sequence[Sequence[float]], *,
                   stat: Callable[[np.ndarray], float] = np.median, num_boot: int = 2000,
                   level: float = 0.9, seed: int = 0) -> Rate:
  """Rate c of stat(group) ≈ e^{a + c x}, and a percentile-bootstrap interval.

  groups[k] holds the positive values observed at x[k] (independent draws, e.g. over w*);
  each bootstrap replicate resamples every group with replacement and refits. Needs at
  least two x; NaN otherwise. Deterministic in `seed`.
  """
  x = np.asarray(x, float)
  gs = [np.asarray(g, float) for g in groups]
  if len(gs) != x.size:
    raise ValueError(f"{x.size} x values but {len(gs)} groups")
  if x.size < 2 or any(g.size == 0 or np.any(g <= 0) for g in gs):
    return Rate(float("nan"), float("nan"), float("nan"), level, int(x.size))
  slope = log_slope(x, [stat(g) for g in gs])
  rng = np.random.default_rng(seed)
  boots = np.empty(num_boot)
  for b in range(num_boot):
    boots[b] = log_slope(x, [stat(g[rng.integers(0, g.size, g.size)]) for g in gs])
  lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
  return Rate(slope, float(lo), float(hi), level, int(x.size))


def quantiles(values: Sequence[float], qs: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)
              ) -> list[float]:
  """Quantiles of the finite entries of `values` (NaNs if none)."""
  v = np.asarray(values, float)
  v = v[np.isfinite(v)]
  if v.size == 0:
    return [float("nan")] * len(qs)
  return [float(q) for q in np.quantile(v, qs)]
