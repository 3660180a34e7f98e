"""boxqp: the certified box-bounded fit against scipy's bounded least squares."""
import numpy as np
import pytest
import quadprog
import scipy.linalg as sla
from scipy.optimize import lsq_linear

from rfjax import boxqp
from rfjax import solvers


def _problem(rng, r, cond, *, y_scale=1.0):
  """A centred box problem with Q = V diag(λ) Vᵀ, λ log-spaced over `cond`, and scipy's form.

  Returns (Problem, A, b, const) with E(u) = ‖A u − b‖² + const for scipy.optimize.lsq_linear.
  """
  V, _ = np.linalg.qr(rng.standard_normal((r, r)))
  lam = np.geomspace(1.0, 1.0 / cond, r) * rng.uniform(0.5, 2.0)
  Q = (V * lam) @ V.T
  Q = 0.5 * (Q + Q.T)
  u_star = y_scale * rng.standard_normal(r)
  c = Q @ u_star + 1e-3 * rng.standard_normal(r)
  A = np.sqrt(lam)[:, None] * V.T
  b = (V.T @ c) / np.sqrt(lam)
  var_y = float(b @ b) + rng.uniform(0.1, 1.0)    # so that the minimum is positive
  p = boxqp.Problem(Q_rr=Q, c_r=c, var_y=var_y, yy=var_y, mean_r=np.zeros(r), y_mean=0.0)
  return p, A, b, var_y - float(b @ b)


def _scipy_min(A, b, const, B):
  res = lsq_linear(A, b, bounds=(-B, B), method="bvls", tol=1e-14, max_iter=20000)
  assert res.status > 0, res.message
  return res.x, 2 * res.cost + const


def _quadprog_min(p, B):
  """min ½uᵀQu − cᵀu s.t. −B ≤ u ≤ B by quadprog (Goldfarb–Idnani dual active set)."""
  r = p.c_r.shape[0]
  C = np.hstack([np.eye(r), -np.eye(r)])
  return quadprog.solve_qp(p.Q_rr, p.c_r, C, -B * np.ones(2 * r))[0]


def test_fifty_random_problems_match_an_independent_qp_solver_with_certified_gap():
  """r up to 512, condition numbers to 1e8, the bound active on 5%–95% of the coordinates.

  The reference is quadprog (an exact dual active-set QP solver); the small problems are also
  checked against scipy's bounded least squares (BVLS), which is too slow for the large
  ill-conditioned ones. At condition number κ a solution is determined by its float64 data
  only to about √(eps κ) along the weakest direction (1e-4 at κ = 1e8), so the weights are
  compared in ℓ∞ up to κ = 1e7 and in the problem's own norm ‖u − v‖_Q everywhere.
  """
  rng = np.random.default_rng(0)
  for trial in range(50):
    r = int(rng.choice([4, 16, 64, 128, 256, 512]))
    cond = float(10 ** rng.uniform(0, 8)) if trial % 5 else 1e8
    p, A, b, const = _problem(rng, r, cond)
    u_ls = np.linalg.solve(p.Q_rr, p.c_r)
    B = float(np.quantile(np.abs(u_ls), rng.choice([0.05, 0.3, 0.7, 0.95])))
    sol = boxqp.solve(p, B)
    ref = boxqp.certify(p, _quadprog_min(p, B), B)
    where = f"trial {trial}: r = {r}, cond = {cond:.1e}"
    assert sol.kkt, where
    assert np.all(np.abs(sol.u_r) <= B)
    assert sol.gap <= 1e-6 * p.yy, where
    assert sol.lower <= ref.error + 1e-12 * p.yy and ref.lower <= sol.error + 1e-12 * p.yy
    diff = sol.u_r - ref.u_r
    assert np.sqrt(max(diff @ p.Q_rr @ diff, 0.0)) <= 1e-6 * np.sqrt(p.yy), where
    if cond <= 1e7:
      np.testing.assert_allclose(sol.u_r, ref.u_r, atol=1e-5 * max(1.0, B), err_msg=where)
    if r <= 64:
      u_bvls, e_bvls = _scipy_min(A, b, const, B)
      assert sol.lower <= e_bvls + 1e-12 * p.yy <= sol.error + 2e-12 * p.yy, where
      if cond <= 1e7:
        np.testing.assert_allclose(sol.u_r, u_bvls, atol=1e-5 * max(1.0, B), err_msg=where)


def test_certificate_brackets_the_minimum_before_convergence():
  rng = np.random.default_rng(1)
  p, A, b, const = _problem(rng, 64, 1e6)
  B = float(np.quantile(np.abs(np.linalg.solve(p.Q_rr, p.c_r)), 0.3))
  _, e_ref = _scipy_min(A, b, const, B)
  for pivots in (1, 2, 3):
    sol = boxqp.solve(p, B, max_pivots=pivots)
    assert sol.lower <= e_ref + 1e-10 <= sol.error + 2e-10
    # The line under v(B) is below the minimum at other bounds too.
    for B2 in (0.5 * B, 2 * B):
      assert sol.lower_at(B2) <= _scipy_min(A, b, const, B2)[1] + 1e-10
  # An arbitrary feasible point carries a valid certificate as well.
  pt = boxqp.certify(p, rng.uniform(-B, B, 64), B)
  assert pt.lower <= e_ref + 1e-10 <= pt.error + 1e-10


def test_murty_fallback_and_warm_starts_give_the_same_answer():
  rng = np.random.default_rng(2)
  p, _, _, _ = _problem(rng, 128, 1e7)
  B = float(np.quantile(np.abs(np.linalg.solve(p.Q_rr, p.c_r)), 0.5))
  base = boxqp.solve(p, B)
  single = boxqp.solve(p, B, patience=0)            # single pivots as soon as progress stalls
  warm = boxqp.solve(p, B, state_r=np.sign(p.c_r).astype(np.int8))
  for s in (single, warm):
    assert s.kkt
    np.testing.assert_allclose(s.u_r, base.u_r, atol=1e-9)
    assert s.error == pytest.approx(base.error, abs=1e-12)


def test_path_is_monotone_and_ends_at_least_squares():
  rng = np.random.default_rng(3)
  p, _, _, _ = _problem(rng, 96, 1e5)
  ls = boxqp.least_squares(p)
  np.testing.assert_allclose(ls.u_r, np.linalg.solve(p.Q_rr, p.c_r), rtol=1e-8, atol=1e-10)
  grid = np.geomspace(1e-3, 2.0, 12) * ls.B
  sols = boxqp.path(p, grid)
  errs = np.array([s.error for s in sols])
  assert np.all(np.diff(errs) <= 1e-12)
  assert errs[-1] == pytest.approx(ls.error, abs=1e-12)
  assert errs[0] <= p.var_y
  # v is convex in B: every chord lies above the curve.
  mid = boxqp.solve(p, 0.5 * (grid[3] + grid[4])).error
  assert mid <= 0.5 * (errs[3] + errs[4]) + 1e-12
  with pytest.raises(ValueError, match="non-decreasing"):
    boxqp.path(p, grid[::-1])


def test_min_B_bracket_is_certified_by_an_independent_solver():
  rng = np.random.default_rng(4)
  p, A, b, const = _problem(rng, 48, 1e6)
  ls = boxqp.least_squares(p)
  eps = ls.error + 0.3 * (p.var_y - ls.error)
  res = boxqp.min_B(p, eps, B_max=10 * ls.B, ratio=1.2)
  assert res.status == "reached"
  assert res.B_hi / res.B_lo <= 1.2
  assert _scipy_min(A, b, const, res.B_lo * (1 - 1e-9))[1] > eps
  assert _scipy_min(A, b, const, res.B_hi)[1] <= eps + 1e-12
  assert res.error_hi <= eps and np.max(np.abs(res.u_hi)) <= res.B_hi * (1 + 1e-12)
  # Below the least-squares error, nothing reaches eps: certified up to B_max.
  none = boxqp.min_B(p, 0.9 * ls.error, B_max=10 * ls.B)
  assert none.status == "not_reachable" and none.lower_at_B_max > 0.9 * ls.error
  # Above the variance, u = 0 reaches it.
  assert boxqp.min_B(p, 1.01 * p.var_y, B_max=1.0).B_hi == 0.0


def test_dead_and_duplicated_features():
  rng = np.random.default_rng(5)
  n, r = 4000, 12
  phi = rng.standard_normal((n, r))
  phi[:, 3] = 0.0                        # a dead feature
  phi[:, 7] = phi[:, 2]                  # a duplicate
  y = phi[:, :6] @ rng.standard_normal(6) + 0.1 * rng.standard_normal(n)
  m = solvers.Moments(G_rr=phi.T @ phi / n, b_r=phi.T @ y / n, mean_r=phi.mean(0),
                      y_mean=y.mean(), yy=float(y @ y / n))
  p = boxqp.problem(m)
  for B in (0.05, 0.3, 10.0):
    sol = boxqp.solve(p, B)
    assert sol.u_r[3] == 0.0
    assert sol.gap <= 1e-8 * p.yy
    res = lsq_linear(np.c_[phi - phi.mean(0)], y - y.mean(), bounds=(-B, B), method="bvls",
                     tol=1e-14)
    assert sol.error == pytest.approx(2 * res.cost / n, rel=1e-7, abs=1e-10)
    # The bias is the best one for the weights.
    resid = phi @ sol.u_r + sol.u0 - y
    assert float(np.mean(resid**2)) == pytest.approx(sol.error, rel=1e-9, abs=1e-12)


def test_problem_from_moments_matches_solvers_error():
  rng = np.random.default_rng(6)
  n, r = 500, 7
  phi = rng.standard_normal((n, r)) + 0.3
  y = rng.standard_normal(n) + 1.0
  m = solvers.Moments(G_rr=phi.T @ phi / n, b_r=phi.T @ y / n, mean_r=phi.mean(0),
                      y_mean=y.mean(), yy=float(y @ y / n))
  p = boxqp.problem(m)
  u = rng.standard_normal(r)
  assert boxqp.error(p, u) == pytest.approx(float(solvers.error(m, u, boxqp.bias(p, u))),
                                            rel=1e-10)
  with pytest.raises(ValueError, match="B must be > 0"):
    boxqp.solve(p, 0.0)
  L = sla.cholesky(p.Q_rr, lower=True)
  assert np.all(np.diag(L) > 0)
