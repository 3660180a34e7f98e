"""Thm 3.3: sup-error of r random features u_i = g(w_i)/r against the integral, for several
random polynomials P in each of several d; r = 2^4..2^13.

rfjax --config=configs/rf_concentration.py --workdir=runs/rf_concentration
rfjax --config=configs/rf_concentration.py:smoke --workdir=/tmp/smoke

Criteria (fixed before any run; docs/theory.md "Random features approximate the integral
(Thm 3.3)"):
- delta: the theorem's δ. Its statement: for each r, with probability > 1 − δ over the
  features, sup_x|f̂_r − f| ≤ LC/√r·(4 + √(2 log(1/δ))). Per (d, P, r), at most a fraction δ
  of the seeds may exceed it; more is a failure when a binomial chance at rate δ is below
  (1 − level)/(number of (d, P, r) tested), and inconclusive otherwise.
- slope_tol, level, num_boot: the rate r^{-1/2}: the slope of log(mean sup-error) against
  log r within −1/2 ± slope_tol, decided by a seed bootstrap interval at `level`.
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "rf_concentration"
  c.seed = 0
  c.sigma = "poly3"              # polynomial σ: the integral is exactly P
  c.truncation_degree = 7        # K, used only for a non-polynomial σ (exp, sincos)
  c.ds = (2, 4, 8)
  c.k = 2                        # degree of the random P
  c.num_polys = 4                # random polynomials P per d
  c.num_terms = 4
  c.num_sup = 8192
  c.log2_r_min, c.log2_r_max = 4, 13
  c.chunk = 16                   # features per lax.scan step
  c.num_seeds = 16               # feature draws per P
  c.num_test = 4096              # half on the unit sphere, half in the ball
  c.delta = 0.1                  # verdict: the theorem's δ
  c.slope_tol = 0.1              # verdict: slope of log mean sup-error vs log r in −0.5 ± this
  c.level = 0.9                  # verdict: seed-bootstrap interval / binomial chance level
  c.num_boot = 1000              # bootstrap replicates of the slope
  if variant == "smoke":
    c.ds, c.num_polys = (2, 3), 2
    c.log2_r_max, c.num_seeds, c.num_test, c.num_sup = 9, 8, 512, 1024
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
