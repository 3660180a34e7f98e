"""rfjax.stats against closed forms and scipy: grouping, mean ± s.e., slopes, paired rates."""
import math

import numpy as np
import pytest
import scipy.stats

from rfjax import stats


def test_group_by_keeps_first_seen_order_and_every_row():
  rows = [dict(d=2, k=1, v=0), dict(d=3, k=1, v=1), dict(d=2, k=1, v=2), dict(d=2, k=2, v=3)]
  groups = stats.group_by(rows, "d", "k")
  assert list(groups) == [(2, 1), (3, 1), (2, 2)]
  assert [r["v"] for r in groups[2, 1]] == [0, 2]
  assert sum(len(g) for g in groups.values()) == len(rows)
  assert list(stats.group_by(rows, "d")) == [(2,), (3,)]


def test_mean_se_matches_scipy():
  v = np.random.default_rng(0).normal(1.0, 2.0, 37)
  mean, se = stats.mean_se(v)
  assert mean == pytest.approx(float(np.mean(v)), rel=1e-15)
  assert se == pytest.approx(float(scipy.stats.sem(v)), rel=1e-12)
  assert stats.mean_se([1.0, 3.0]) == (2.0, 1.0)             # std (ddof 1) √2, over √2


def test_log_line_and_slopes_recover_exact_laws():
  x = np.array([2.0, 3.0, 5.0, 8.0])
  slope, intercept = stats.log_line(x, 3.0 * np.exp(-0.7 * x))
  assert slope == pytest.approx(-0.7, abs=1e-12) and intercept == pytest.approx(math.log(3.0))
  assert stats.log_slope(x, 3.0 * np.exp(-0.7 * x)) == slope
  assert stats.loglog_slope(x, 5.0 * x ** -0.5) == pytest.approx(-0.5, abs=1e-12)
  # With noise: the least-squares line of scipy's linregress on the logs.
  y = 5.0 * x ** 1.3 * np.exp(np.random.default_rng(1).normal(0, 0.1, x.size))
  assert stats.loglog_slope(x, y) == pytest.approx(
      scipy.stats.linregress(np.log(x), np.log(y)).slope, rel=1e-10)
  for bad in ([1.0], [1.0, 0.0], [1.0, -2.0]):
    assert math.isnan(stats.loglog_slope([1.0, 2.0][:len(bad)], bad))
    assert all(math.isnan(v) for v in stats.log_line([1.0, 2.0][:len(bad)], bad))


def test_paired_rate_resamples_whole_rows():
  x = np.array([16.0, 64.0, 256.0, 1024.0])
  scale_s = np.random.default_rng(2).uniform(0.5, 2.0, 12)
  # Every row is its own multiple of x^(−1/2): any resample of whole rows has mean
  # (mean scale)·x^(−1/2), so the interval collapses onto the slope; resampling each x on its
  # own would not.
  rate = stats.paired_loglog_rate(x, scale_s[:, None] * x[None] ** -0.5, level=0.9,
                                  num_boot=200)
  assert rate.slope == pytest.approx(-0.5, abs=1e-12)
  assert rate.lo == pytest.approx(-0.5, abs=1e-12) and rate.hi == pytest.approx(-0.5, abs=1e-12)
  assert rate.num_points == 4 and rate.level == 0.9
  unpaired = stats.loglinear_rate(np.log(x), list((scale_s[:, None] * x[None] ** -0.5).T),
                                  stat=np.mean, num_boot=200)
  assert unpaired.hi - unpaired.lo > 0.05
  # Noisy rows: the interval holds the slope and is deterministic in the seed.
  noisy = scale_s[:, None] * x[None] ** -0.5 * np.exp(
      np.random.default_rng(3).normal(0, 0.3, (12, 4)))
  a = stats.paired_loglog_rate(x, noisy, level=0.9, num_boot=300, seed=5)
  assert a.lo <= a.slope <= a.hi and a.hi - a.lo > 0
  assert stats.paired_loglog_rate(x, noisy, level=0.9, num_boot=300, seed=5) == a
