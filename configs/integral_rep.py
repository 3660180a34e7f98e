"""Thm 3.4: Legendre integral representation of random polynomials, sup|g| and residual.

rfjax --config=configs/integral_rep.py --workdir=runs/integral_rep
rfjax --config=configs/integral_rep.py:smoke --workdir=/tmp/smoke
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "integral_rep"
  c.seed = 0
  c.sigmas = ("poly3", "exp", "sincos")   # polynomial σ: K = deg σ (exact)
  c.ds = (2, 3, 4, 5, 6, 7, 8)
  c.ks = (1, 2, 3)
  c.truncation_degrees = (3, 5, 7)         # K for analytic σ (degree of ĝ)
  c.num_seeds = 3                          # random polynomials per cell
  c.num_terms = 4                          # monomials per random P
  c.num_sup = 2048                         # uniform points for the sup|g| estimate
  c.num_test = 1024                        # x points for the residual (half sphere, half ball)
  c.chunk = 512
  c.poly_tol = 1e-10                       # verdict: residual ≤ this for polynomial σ
  c.sup_rtol, c.sup_atol = 1e-9, 1e-12     # verdict: sup_g ≤ Σ|b_J|(1 + rtol) + atol (rounding)
  if variant == "smoke":
    c.ds, c.ks, c.truncation_degrees = (2, 3), (1, 2), (2, 4)
    c.num_seeds, c.num_sup, c.num_test, c.chunk = 2, 1024, 256, 128
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
