"""boxqp's fast path: block updates of a kept Cholesky factor give the exact solver's answers.

`boxqp.solve` solves free blocks of ≥ _UPDATE_MIN coordinates from the factor of a nearby
free block (Schur complement on the added coordinates, multipliers pinning the removed
ones), kept across pivots and across the solves of a path. These tests lower _UPDATE_MIN so
that small problems take that path, and compare with quadprog and with fresh solves.
"""
import numpy as np
import pytest
import quadprog

from rfjax import boxqp


def _problem(rng, r, cond):
  """A box problem with Q = V diag(λ) Vᵀ, λ log-spaced over `cond` (as in test_boxqp)."""
  V, _ = np.linalg.qr(rng.standard_normal((r, r)))
  lam = np.geomspace(1.0, 1.0 / cond, r) * rng.uniform(0.5, 2.0)
  Q = (V * lam) @ V.T
  Q = 0.5 * (Q + Q.T)
  c = Q @ rng.standard_normal(r) + 1e-3 * rng.standard_normal(r)
  var_y = float(c @ np.linalg.solve(Q, c)) + rng.uniform(0.1, 1.0)
  return boxqp.Problem(Q_rr=Q, c_r=c, var_y=var_y, yy=var_y, mean_r=np.zeros(r), y_mean=0.0)


def _quadprog(p, B):
  r = p.c_r.shape[0]
  C = np.hstack([np.eye(r), -np.eye(r)])
  return boxqp.certify(p, quadprog.solve_qp(p.Q_rr, p.c_r, C, -B * np.ones(2 * r))[0], B)


@pytest.fixture
def updates(monkeypatch):
  """Block updates from 8 free coordinates on; the trace of every block solve."""
  monkeypatch.setattr(boxqp, "_UPDATE_MIN", 8)
  monkeypatch.setattr(boxqp, "_TRACE", [])
  boxqp._CACHE.clear()
  yield boxqp
  boxqp._CACHE.clear()


def test_factor_update_solves_the_bordered_block_exactly():
  """F = F0 − D + E through the factor of Q_{F0F0} equals a direct solve of Q_FF."""
  rng = np.random.default_rng(0)
  r = 60
  p = _problem(rng, r, 1e4)
  free0 = rng.uniform(size=r) < 0.7
  fac = boxqp._factorise(p.Q_rr, np.flatnonzero(free0))
  for _ in range(4):                          # the border grows and shrinks; columns are kept
    free = free0.copy()
    free[rng.choice(r, 8, replace=False)] ^= True
    rhs = rng.standard_normal(r)
    x = fac.solver(p.Q_rr, free)(rhs)
    F = np.flatnonzero(free)
    np.testing.assert_allclose(x[F], np.linalg.solve(p.Q_rr[np.ix_(F, F)], rhs[F]), rtol=1e-8,
                               atol=1e-10)
    assert np.all(x[~free] == 0.0)
  assert fac.m >= 8


def test_updated_solves_match_quadprog_with_certified_gap(updates):
  """r to 256, condition numbers to 1e8, the bound active on 5%–95% of the coordinates."""
  rng = np.random.default_rng(1)
  for trial in range(16):
    r = int(rng.choice([32, 96, 256]))
    cond = float(10 ** rng.uniform(2, 8))
    p = _problem(rng, r, cond)
    u_ls = np.linalg.solve(p.Q_rr, p.c_r)
    B = float(np.quantile(np.abs(u_ls), rng.choice([0.05, 0.3, 0.7, 0.95])))
    sol = boxqp.solve(p, B)
    ref = _quadprog(p, B)
    where = f"trial {trial}: r = {r}, cond = {cond:.1e}"
    assert sol.kkt and np.all(np.abs(sol.u_r) <= B), where
    assert sol.gap <= 1e-8 * p.yy, where
    assert sol.lower <= ref.error + 1e-10 * p.yy and ref.lower <= sol.error + 1e-10 * p.yy
    d = sol.u_r - ref.u_r
    assert np.sqrt(max(d @ p.Q_rr @ d, 0.0)) <= 1e-6 * np.sqrt(p.yy), where
  assert any(not fresh for fresh, *_ in updates._TRACE)      # updates were really used


def test_path_with_kept_factor_matches_fresh_solves(updates, monkeypatch):
  """A path reuses one factor across its values of B; every point is the exact one."""
  rng = np.random.default_rng(2)
  p = _problem(rng, 200, 1e8)
  ls = boxqp.least_squares(p)
  grid = np.geomspace(1e-2, 2.0, 10) * ls.B
  sols = boxqp.path(p, grid)
  fresh_count = sum(f for f, *_ in updates._TRACE)
  assert fresh_count <= 0.6 * len(updates._TRACE)       # fresh ones: the cold start at grid[0]
  monkeypatch.setattr(boxqp, "_UPDATE_MIN", 10**9)            # the exact solver, fresh blocks
  for B, s in zip(grid, sols):
    ref = boxqp.solve(p, B)
    assert s.kkt and ref.kkt
    assert np.array_equal(s.state_r, ref.state_r)
    d = s.u_r - ref.u_r
    assert np.sqrt(max(d @ p.Q_rr @ d, 0.0)) <= 1e-7 * np.sqrt(p.yy)
    # E(u) = uᵀQu − 2cᵀu + Var y rounds at ~eps uᵀQu ≫ eps E(u) here (weights to 1e4).
    assert s.error == pytest.approx(ref.error, abs=1e-8 * p.yy)
    # The gap ≈ 4B‖Q_FF u_F − rhs_F‖₁ at the top of the grid (B ~ 1e4): rounding of the
    # residual times B, the same for both solvers.
    assert s.gap <= 10 * ref.gap + 1e-12 * p.yy, (s.gap, ref.gap)


def test_kept_factor_is_per_Q_and_survives_in_place_changes(updates):
  """A factor kept for one Q is not used for another; if Q changes in place, the refinement
  against Q notices and the block is refactorised."""
  rng = np.random.default_rng(3)
  p1, p2 = _problem(rng, 64, 1e5), _problem(rng, 64, 1e5)
  B = float(np.quantile(np.abs(np.linalg.solve(p1.Q_rr, p1.c_r)), 0.5))
  boxqp.solve(p1, B)
  assert boxqp._cached_factor(p1.Q_rr) is not None and boxqp._cached_factor(p2.Q_rr) is None
  s2 = boxqp.solve(p2, B)
  assert s2.kkt and s2.gap <= 1e-8 * p2.yy
  Q = p1.Q_rr
  boxqp.solve(p1, B)
  Q *= 1.5                                    # the kept factor is now stale
  sol = boxqp.solve(p1, B, state_r=boxqp.solve(p1, B).state_r)
  ref = _quadprog(p1, B)
  assert sol.kkt and abs(sol.error - ref.error) <= 1e-9 * p1.yy
  del p1, Q, sol
  import gc  # pylint: disable=import-outside-toplevel
  gc.collect()
  assert "fac" in boxqp._CACHE or not boxqp._CACHE
