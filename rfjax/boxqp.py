"""Certified box-bounded least squares from population moments (docs/theory.md §5).

    v(B) = min_{u, u0} E(Σ_i u_i f_i(x) + u0 − y)²   s.t.  |u_i| ≤ B.

The bias u0 is free and eliminated exactly (u0 = E y − E f · u), which leaves the centred
quadratic  E(u) = uᵀQu − 2cᵀu + Var y  with Q = Cov(f) [r, r] and c = Cov(f, y) [r].

The solver is an exact active-set method: block principal pivoting (Júdice & Pires 1994)
on the partition of the coordinates into free / at +B / at −B. Each pivot solves the free
block Q_FF u_F = c_F − Q_FA u_A by Cholesky and moves every coordinate that violates the
KKT conditions; when the number of violations stops falling for `patience` pivots, it
falls back to Murty's single pivot on the largest violating index, which terminates for any
positive definite Q. On termination the KKT conditions hold to rounding and the
Frank–Wolfe gap (below) is at the level of float64 rounding.

Every answer carries its certificate. For any feasible u at B with g = Qu − c,

    E(u') ≥ E(u) + 2g·(u' − u)   (convexity)   ⇒   v(B') ≥ E(u) − 2g·u − 2B'‖g‖₁   for all B',

a line under the whole curve v. At B' = B its value is E(u) − gap with the Frank–Wolfe gap
gap = 2(g·u + B‖g‖₁) ≥ E(u) − v(B). So a solution reports (error, lower): the error it
reaches and a certified lower bound on the minimum, with the gap between them.

v(B) is convex and non-increasing in B (the feasible sets scale linearly), which `min_B`
uses to bracket the smallest B with v(B) ≤ ε from both sides with few solves: the line of
any solution gives a certified lower end (a Newton step), and a convex combination of two
solutions gives an upper end (a secant step) whose error is evaluated, not assumed.

Everything here is float64 NumPy/LAPACK on the host: the partitions change size from pivot
to pivot, which fixed-shape compiled code would pay for with a full r × r factorisation
per pivot. The moments it starts from come from `rfjax.solvers` (JAX, jit/vmap, sharded).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg as sla

# Relative Cholesky jitter tried, in order, when a free block is numerically singular
# (duplicated or dependent features). The certificate is always computed without it.
_JITTERS = (0.0, 1e-13, 1e-11, 1e-9, 1e-7)
# A feature whose variance is below this fraction of the largest is constant: its weight is
# irrelevant to the error and is fixed at 0.
_DEAD = 1e-14


class Problem(NamedTuple):
  """The centred quadratic of a box fit, float64 on the host.

  E(u) = uᵀ Q u − 2 cᵀ u + var_y, with u0 = y_mean − mean_r · u.
  """
  Q_rr: np.ndarray     # Cov(f)
  c_r: np.ndarray      # Cov(f, y)
  var_y: float         # Var(y)
  yy: float            # E y² (the scale that tolerances are relative to)
  mean_r: np.ndarray   # E f
  y_mean: float        # E y


def problem(m: Any) -> Problem:
  """The Problem of `solvers.Moments` m (G = E ffᵀ, b = E fy, E f, E y, E y²)."""
  G = np.asarray(m.G_rr, np.float64)
  mean = np.asarray(m.mean_r, np.float64)
  b = np.asarray(m.b_r, np.float64)
  y_mean, yy = float(m.y_mean), float(m.yy)
  Q = G - np.outer(mean, mean)
  Q = 0.5 * (Q + Q.T)
  return Problem(Q_rr=Q, c_r=b - y_mean * mean, var_y=yy - y_mean**2, yy=yy, mean_r=mean,
                 y_mean=y_mean)


def error(p: Problem, u_r: np.ndarray) -> float:
  """E(Σ u_i f_i + u0 − y)² at the best bias u0 for u."""
  Qu = p.Q_rr @ u_r
  return float(u_r @ Qu - 2.0 * (p.c_r @ u_r) + p.var_y)


def bias(p: Problem, u_r: np.ndarray) -> float:
  """The best u0 for u: E y − E f · u."""
  return float(p.y_mean - p.mean_r @ u_r)


class Solution(NamedTuple):
  """A feasible point at bound B with its certificate.

  error − gap ≤ v(B) ≤ error; more generally v(B') ≥ line_0 − line_slope·B' for every B'.
  """
  B: float
  u_r: np.ndarray
  u0: float
  error: float
  gap: float           # Frank–Wolfe gap 2(g·u + B‖g‖₁) ≥ error − v(B), g = Qu − c
  lower: float         # error − gap: certified lower bound on v(B)
  line_0: float        # error − 2 g·u
  line_slope: float    # 2‖g‖₁
  state_r: np.ndarray  # int8 partition: 0 free, +1 at +B, −1 at −B
  pivots: int
  kkt: bool            # the pivoting terminated with every KKT condition satisfied

  def lower_at(self, B: float) -> float:
    """Certified lower bound on v(B) for any B ≥ 0 from this one point."""
    return self.line_0 - self.line_slope * B


def certify(p: Problem, u_r: np.ndarray, B: float, state_r: np.ndarray | None = None,
            pivots: int = 0, kkt: bool = False) -> Solution:
  """The Solution (error, gap, line) of a point u, after clipping it into the box [−B, B]."""
  u_r = np.clip(np.asarray(u_r, np.float64), -B, B)
  g_r = p.Q_rr @ u_r - p.c_r
  err = float(u_r @ (g_r - p.c_r) + p.var_y)       # uᵀQu − 2cᵀu + Var y
  gu, g1 = float(g_r @ u_r), float(np.abs(g_r).sum())
  gap = max(2.0 * (gu + B * g1), 0.0)
  if state_r is None:
    state_r = np.zeros(u_r.shape, np.int8)
  return Solution(B=float(B), u_r=u_r, u0=bias(p, u_r), error=err, gap=gap, lower=err - gap,
                  line_0=err - 2.0 * gu, line_slope=2.0 * g1, state_r=state_r, pivots=pivots,
                  kkt=kkt)


def _live(p: Problem) -> np.ndarray:
  diag = np.diag(p.Q_rr)
  top = float(diag.max()) if diag.size else 0.0
  return diag > _DEAD * max(top, np.finfo(np.float64).tiny)


def _solve_block(Q_ff: np.ndarray, rhs_f: np.ndarray) -> np.ndarray:
  """Q_ff⁻¹ rhs_f by Cholesky, with the smallest jitter of _JITTERS that factorises."""
  scale = float(np.mean(np.diag(Q_ff))) if Q_ff.size else 1.0
  for jitter in _JITTERS:
    try:
      a = Q_ff if jitter == 0.0 else Q_ff + (jitter * scale) * np.eye(Q_ff.shape[0])
      factor = sla.cho_factor(a, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
      continue
    x = sla.cho_solve(factor, rhs_f, check_finite=False)
    # One step of iterative refinement against Q_ff itself (not the jittered matrix).
    return x + sla.cho_solve(factor, rhs_f - Q_ff @ x, check_finite=False)
  return np.linalg.lstsq(Q_ff, rhs_f, rcond=None)[0]


def _state_from(u_r: np.ndarray, B: float) -> np.ndarray:
  """The partition a point suggests: coordinates at or beyond ±B are bound."""
  return np.where(u_r >= B, 1, np.where(u_r <= -B, -1, 0)).astype(np.int8)


def solve(p: Problem, B: float, *, state_r: np.ndarray | None = None,
          max_pivots: int | None = None, patience: int = 30) -> Solution:
  """min E(u) s.t. |u_i| ≤ B by block principal pivoting, from partition `state_r`.

  state_r (int8 [r], 0 free / ±1 at ±B) warm-starts the pivoting; None starts with every
  coordinate free, i.e. from the least-squares solution. Returns the final point (always
  feasible) with its certificate; `kkt` says whether the pivoting terminated, which it
  does unless `max_pivots` (default 100 + 2r) runs out.
  """
  if not B > 0:
    raise ValueError(f"B must be > 0, got {B!r}")
  Q, c = p.Q_rr, p.c_r
  r = c.shape[0]
  live = _live(p)
  state = (np.zeros(r, np.int8) if state_r is None else np.asarray(state_r, np.int8).copy())
  state[~live] = 0
  max_pivots = 100 + 2 * r if max_pivots is None else max_pivots
  best, budget = r + 1, patience
  u = np.zeros(r)
  kkt = False
  pivots = 0
  for pivots in range(1, max_pivots + 1):
    free = (state == 0) & live
    u = B * state.astype(np.float64)
    if free.any():
      bound = ~free
      rhs = c[free] - Q[np.ix_(free, bound)] @ u[bound]
      u[free] = _solve_block(Q[np.ix_(free, free)], rhs)
    lam = c - Q @ u                      # −gradient/2: ≥ 0 needed at +B, ≤ 0 at −B
    up, lo = free & (u > B), free & (u < -B)
    leave = live & (((state == 1) & (lam < 0)) | ((state == -1) & (lam > 0)))
    bad = up | lo | leave
    n_bad = int(bad.sum())
    if n_bad == 0:
      kkt = True
      break
    if n_bad < best:
      best, budget, flip = n_bad, patience, bad
    elif budget > 0:
      budget -= 1
      flip = bad
    else:                                 # Murty's rule: the largest violating index alone
      flip = np.zeros(r, bool)
      flip[np.flatnonzero(bad)[-1]] = True
    state = state.copy()
    state[flip & up], state[flip & lo], state[flip & leave] = 1, -1, 0
  u[~live] = 0.0
  return certify(p, u, B, state, pivots, kkt)


def least_squares(p: Problem) -> Solution:
  """The unconstrained minimiser (B = ∞), certified as a box point at B = max|u_i|."""
  live = _live(p)
  u = np.zeros(p.c_r.shape[0])
  if live.any():
    u[live] = _solve_block(p.Q_rr[np.ix_(live, live)], p.c_r[live])
  B = float(np.abs(u).max()) if u.size else 0.0
  return certify(p, u, max(B, np.finfo(np.float64).tiny), _state_from(u, B), 1, True)


def least_squares_all(ps: list[Problem]) -> list[Solution]:
  """least_squares(p) for problems that share one Q (targets over the same features): one
  factorisation for all of them."""
  if not ps:
    return []
  Q = ps[0].Q_rr
  if any(p.Q_rr is not Q and not np.array_equal(p.Q_rr, Q) for p in ps[1:]):
    raise ValueError("least_squares_all needs problems with the same Q_rr")
  live = _live(ps[0])
  U = np.zeros((Q.shape[0], len(ps)))
  if live.any():
    C = np.stack([p.c_r[live] for p in ps], axis=1)
    U[live] = _solve_block(Q[np.ix_(live, live)], C)
  out = []
  for k, p in enumerate(ps):
    u = U[:, k]
    B = float(np.abs(u).max()) if u.size else 0.0
    out.append(certify(p, u, max(B, np.finfo(np.float64).tiny), _state_from(u, B), 1, True))
  return out


def path(p: Problem, B_grid: Any) -> list[Solution]:
  """Solutions along an increasing grid of B, each warm-started from the previous one."""
  B_grid = [float(b) for b in np.asarray(B_grid, np.float64).ravel()]
  if any(b2 < b1 for b1, b2 in zip(B_grid, B_grid[1:])):
    raise ValueError("B_grid must be non-decreasing")
  out, state = [], None
  for B in B_grid:
    sol = solve(p, B, state_r=state)
    out.append(sol)
    state = sol.state_r
  return out


# --------------------------------------------------------------------------- min B


class MinB(NamedTuple):
  """The smallest B with v(B) ≤ eps, bracketed: v(B) > eps for every B < B_lo (certified by
  a line under v) and the point at B_hi reaches error_hi ≤ eps.

  status: "reached" (B_lo < B* ≤ B_hi, B_hi / B_lo ≤ ratio), "not_reachable" (the certified
  lower bound at B_max is > eps; then B_lo = B_max, B_hi = inf), or "unresolved" (neither
  could be certified within the solve budget: the bracket so far is kept, never used).
  """
  status: str
  eps: float
  B_lo: float
  B_hi: float
  error_hi: float          # error reached at B_hi (nan if none)
  u_hi: np.ndarray | None  # the point reaching eps with max|u| = B_hi
  u0_hi: float
  ls_error: float          # least-squares (B = ∞) error
  ls_B: float              # max|u| of the least-squares solution
  lower_at_B_max: float    # certified lower bound on v(B_max)
  solves: int
  max_gap: float           # largest gap among the box solves made


def _line_root(sol: Solution, eps: float) -> float:
  """The B' where sol's lower line meets eps: v(B) > eps for every B < this (−inf if none)."""
  if sol.line_slope <= 0:
    return math.inf if sol.line_0 > eps else -math.inf
  return (sol.line_0 - eps) / sol.line_slope


def min_B(p: Problem, eps: float, *, B_max: float, ratio: float = 1.2, max_solves: int = 40,
          ls: Solution | None = None) -> MinB:
  """Smallest B ≤ B_max with v(B) ≤ eps, bracketed to B_hi / B_lo ≤ ratio, both ends certified.

  `ls` is the least-squares Solution if already computed. Solves run at the geometric mean
  of the current bracket, warm-started from the nearest solved partition; the lower end
  moves by the Newton step of each solution's line, the upper end by secant points (convex
  combinations of two solutions, whose error is evaluated exactly).
  """
  if not ratio > 1:
    raise ValueError(f"ratio must be > 1, got {ratio!r}")
  r = p.c_r.shape[0]
  ls = least_squares(p) if ls is None else ls
  zero = certify(p, np.zeros(r), 0.0)
  solved: list[Solution] = [zero]
  B_lo = max(_line_root(zero, eps), 0.0)
  hi: Solution | None = None
  solves, max_gap = 0, 0.0

  def done(status: str, B_lo: float, B_hi: float, hi: Solution | None,
           lower_max: float) -> MinB:
    return MinB(status=status, eps=float(eps), B_lo=float(B_lo), B_hi=float(B_hi),
                error_hi=hi.error if hi is not None else float("nan"),
                u_hi=None if hi is None else hi.u_r, u0_hi=hi.u0 if hi is not None else 0.0,
                ls_error=ls.error, ls_B=ls.B, lower_at_B_max=float(lower_max), solves=solves,
                max_gap=max_gap)

  if p.var_y <= eps:                              # u = 0 already reaches eps
    return done("reached", 0.0, 0.0, zero, zero.lower_at(B_max))
  if ls.error <= eps and ls.B <= B_max:
    hi = ls
  elif ls.error > eps and ls.lower_at(B_max) > eps:   # the least-squares line certifies it
    return done("not_reachable", B_max, math.inf, None, ls.lower_at(B_max))
  else:
    top = solve(p, B_max, state_r=_state_from(ls.u_r, B_max))
    solves, max_gap = 1, top.gap
    solved.append(top)
    B_lo = max(B_lo, _line_root(top, eps))
    if top.error <= eps:
      hi = top
    elif top.lower > eps:
      return done("not_reachable", B_max, math.inf, None, top.lower)
    else:
      return done("unresolved", B_lo, math.inf, None, top.lower)
  lower_max = max(s.lower_at(B_max) for s in solved)

  def secant(a: Solution, b: Solution) -> Solution | None:
    """The convex combination of a (error > eps) and b (error ≤ eps) whose chord value is eps."""
    if not (a.error > eps >= b.error):
      return None
    t = (a.error - eps) / (a.error - b.error)
    u = (1 - t) * a.u_r + t * b.u_r
    B = float(np.abs(u).max())
    s = certify(p, u, max(B, np.finfo(np.float64).tiny), _state_from(u, B))
    return s if s.error <= eps else None

  while hi.B / max(B_lo, np.finfo(np.float64).tiny) > ratio and solves < max_solves:
    below = max((s for s in solved if s.error > eps), key=lambda s: s.B)
    sec = secant(below, hi)
    if sec is not None and sec.B < hi.B:
      hi = sec
      if hi.B / max(B_lo, np.finfo(np.float64).tiny) <= ratio:
        break
    B_t = math.sqrt(max(B_lo, hi.B * 1e-6) * hi.B)
    # Warm start: the partition of the point interpolated between the two solutions around
    # B_t (the solution path u(B) is piecewise linear in B).
    theta = (B_t - below.B) / (hi.B - below.B) if hi.B > below.B else 1.0
    guess = (1 - theta) * below.u_r + theta * hi.u_r
    sol = solve(p, B_t, state_r=_state_from(guess, B_t))
    if not sol.kkt:                      # a poor warm start: start again from least squares
      sol = min(sol, solve(p, B_t), key=lambda s: s.gap)
    solves += 1
    max_gap = max(max_gap, sol.gap)
    solved.append(sol)
    B_lo = max(B_lo, _line_root(sol, eps))   # ≤ B_t whenever sol reaches eps
    if sol.error <= eps and sol.B < hi.B:
      hi = sol
  lower_max = max(lower_max, max(s.lower_at(B_max) for s in solved))
  status = "reached" if hi.B / max(B_lo, np.finfo(np.float64).tiny) <= ratio else "unresolved"
  return done(status, B_lo, hi.B, hi, lower_max)
