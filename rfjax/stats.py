"""Shared statistics for summaries: rows grouped by fields, means with standard errors,
least-squares log-linear and log-log slopes, rates with bootstrap intervals, quantiles.

The one home of the statistics that summaries share, so that one experiment's "slope" or
"mean ± s.e." is computed as another's.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np


class Rate(NamedTuple):
  """slope of log(stat(values)) against x, with a bootstrap interval [lo, hi] at `level`."""
  slope: float
  lo: float
  hi: float
  level: float
  num_points: int


def group_by(rows: Iterable[dict[str, Any]], *fields: str
             ) -> dict[tuple[Hashable, ...], list[dict[str, Any]]]:
  """rows grouped by their values of `fields`: {(v_1, ..., v_k): rows}, in first-seen order."""
  groups: dict[tuple[Hashable, ...], list[dict[str, Any]]] = {}
  for row in rows:
    groups.setdefault(tuple(row[f] for f in fields), []).append(row)
  return groups


def mean_se(values: Sequence[float]) -> tuple[float, float]:
  """(mean, standard error of the mean) of `values`: s.e. = sample std (ddof 1) / √n."""
  v = np.asarray(values)                  # in its own dtype: float32 values average in float32
  return float(np.mean(v)), float(np.std(v, ddof=1) / math.sqrt(v.size))


def log_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
  """(slope, intercept) of the least-squares line of log y against x; NaNs with fewer than
  two points or a y ≤ 0."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.size < 2 or np.any(y <= 0):
    return float("nan"), float("nan")
  slope, intercept = np.polyfit(x, np.log(y), 1)
  return float(slope), float(intercept)


def log_slope(x: Sequence[float], y: Sequence[float]) -> float:
  """Least-squares slope of log y against x (y > 0): the rate c of y ≈ e^{a + c x}."""
  return log_line(x, y)[0]


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
  """Least-squares slope of log y against log x (x, y > 0): the power p of y ≈ a x^p."""
  return log_line(np.log(np.asarray(x, float)), y)[0]


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


def paired_loglog_rate(x_j: Sequence[float], values_sj: np.ndarray, *, level: float,
                       num_boot: int, seed: int = 0) -> Rate:
  """Power p of mean_s(values_sj) ≈ a x_j^p (log-log least squares), and a percentile-bootstrap
  interval that resamples whole rows s (values_sj[s] are one draw observed at every x, e.g. one
  seed's nested features at every width, so the rows, not the entries, are independent).
  Deterministic in `seed`."""
  x_j, values_sj = np.asarray(x_j, float), np.asarray(values_sj, float)
  slope = loglog_slope(x_j, values_sj.mean(0))
  rng = np.random.default_rng(seed)
  n = values_sj.shape[0]
  boots = [loglog_slope(x_j, values_sj[rng.integers(0, n, n)].mean(0)) for _ in range(num_boot)]
  lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
  return Rate(slope, float(lo), float(hi), level, int(x_j.size))


def quantiles(values: Sequence[float], qs: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)
              ) -> list[float]:
  """Quantiles of the finite entries of `values` (NaNs if none)."""
  v = np.asarray(values, float)
  v = v[np.isfinite(v)]
  if v.size == 0:
    return [float("nan")] * len(qs)
  return [float(q) for q in np.quantile(v, qs)]
