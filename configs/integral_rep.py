"""Thm 3.4: Legendre integral representation of random polynomials; sup|g| against the
theorem's k-form bound, against K and d; truncation at K for analytic σ.

rfjax --config=configs/integral_rep.py --workdir=runs/integral_rep
rfjax --config=configs/integral_rep.py:smoke --workdir=/tmp/smoke
rfjax --config=configs/integral_rep.py:unsupported --workdir=/tmp/unsupported
rfjax --config=configs/integral_rep.py:all_K --workdir=runs/integral_rep_all_K

Criteria (fixed before any run; docs/theory.md "Integral representation (Thm 3.4)"):
- poly_tol: for polynomial σ the representation is exact, so the residual is rounding.
- bound_form: the theorem's bound on sup|g| in k (the degree of P), not K (the degree of
  ĝ): "binomial" α·A_k·(3(1+√2))^k·C(d+k, k)·d^{k/2}, the sharper of the two forms of our
  reading of the proof, so the stricter check; "power" has (d+1)^k for C(d+k, k).
- trunc_tol: for analytic σ (infinitely many a_n ≠ 0) no bounded g gives equality; what is
  tested is the truncation at K: some K of truncation_degrees with residual ≤ trunc_tol and
  sup|g_K| within the k-form bound. trunc_tol = 5e-3 is one tenth of the ε = 0.05 with which
  polynomial_sgd runs Thm 3.1, whose error budget the residual joins.
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
  c.monomials = "supported"                # P's monomials: "supported" by σ (Thm 3.4's
  #                                          hypothesis) or "all" (no representation where σ
  #                                          lacks a coefficient: a failing case, shown)
  c.num_seeds = 3                          # random polynomials per cell
  c.num_terms = 4                          # monomials per random P
  c.num_sup = 2048                         # uniform points for the sup|g| estimate
  c.num_test = 1024                        # x points for the residual (half sphere, half ball)
  c.chunk = 512
  c.poly_tol = 1e-10                       # verdict: residual ≤ this for polynomial σ
  c.bound_form = "binomial"                # verdict: the k-form bound on sup|g| (see above)
  c.trunc_tol = 5e-3                       # verdict: residual of the truncation at K
  if variant == "smoke":
    c.ds, c.ks, c.truncation_degrees = (2, 3), (1, 2), (2, 4)
    c.num_seeds, c.num_sup, c.num_test, c.chunk = 2, 1024, 256, 128
  elif variant == "all_K":
    # Every truncation degree K = k … 7 (added after the default run, which tried K = 3, 5, 7
    # only): the truncation at K = k, where Σ|b_J| ≤ C_P(k) by the triangle inequality.
    c.ds, c.truncation_degrees = (2, 4, 6, 8), (1, 2, 3, 4, 5, 6, 7)
  elif variant == "unsupported":
    # σ = z − z³/3 (tanh's cubic Taylor polynomial) has a_0 = a_2 = 0: a P with a constant
    # or a degree-2 monomial has no representation at all. Expected verdict: fails.
    c.sigmas, c.monomials = ("tanh3",), "all"
    c.ds, c.ks = (2, 3), (1, 2)
    c.num_seeds, c.num_sup, c.num_test, c.chunk = 3, 1024, 256, 128
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke, all_K, unsupported")
  return c
