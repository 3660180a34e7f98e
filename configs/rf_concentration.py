"""Thm 3.3: sup-error of r random features u_i = g(w_i)/r against the integral, r = 2^4..2^16.

rfjax --config=configs/rf_concentration.py --workdir=runs/rf_concentration
rfjax --config=configs/rf_concentration.py:smoke --workdir=/tmp/smoke
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "rf_concentration"
  c.seed = 0
  c.sigma = "poly3"              # polynomial σ: the integral is exactly P
  c.truncation_degree = 7        # K, used only for a non-polynomial σ (exp, sincos)
  c.ds = (4,)
  c.k = 2                        # degree of the random P
  c.num_terms = 4
  c.num_sup = 8192
  c.log2_r_min, c.log2_r_max = 4, 16
  c.chunk = 16                   # features per lax.scan step
  c.num_seeds = 16
  c.num_test = 10240             # half on the unit sphere, half in the ball
  c.delta = 0.1
  c.slope_tol = 0.1              # verdict: slope of log mean sup-error vs log r in −0.5 ± this
  c.level = 0.9                  # verdict: seed-bootstrap interval / binomial chance level
  c.num_boot = 2000              # bootstrap replicates of the slope
  if variant == "smoke":
    c.log2_r_max, c.num_seeds, c.num_test, c.num_sup = 9, 4, 512, 1024
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
