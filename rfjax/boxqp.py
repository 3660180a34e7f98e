"""Certified box-bounded least squares from population moments (docs/theory.md, "Certified box fit").

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

import contextlib
import math
import weakref
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
      with _one_thread():
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


# Free blocks below this size are solved afresh at every pivot (`_solve_block`): |F|³/3
# flops then cost less than the bookkeeping of an update.
_UPDATE_MIN = 384
# Refactorise once the free set has moved from the factorised one by more than this fraction
# of it (|E| + |D| > |F0| · _REFACTOR), or the kept border columns exceed _TOUCHED · |F0|:
# a pivot then costs about |F0|² k_new flops against |F|³/3 for a fresh factor.
_REFACTOR = 1.0 / 5.0
_TOUCHED = 1.0 / 3.0
# Iterative refinement of every free-block solve against Q itself: at most _REFINE steps,
# stopping when the backward error η = ‖Q_FF x − rhs‖∞ / (max_i Q_ii ‖x‖₁ + ‖rhs‖∞) stops
# falling or is below _ETA_TINY. An update-based solve that ends above _ETA_OK is redone
# from a fresh factor of Q_FF.
_REFINE = 4
_ETA_TINY = 2e-16
_ETA_OK = 1e-13
# At termination, a point found by updates whose η is above this (a few times what a fresh
# factor reaches) is polished from a fresh factor of its final free block, and pivoting
# resumes if the polished point violates the KKT conditions. (η, not the gap: at a KKT point
# the gap is ≈ 2(B‖res_F‖₁ + |res_F·u_F|), which grows with B for the same accuracy.)
_ETA_FINAL = 1e-15


_THREADS: list[Any] = []


def _one_thread():
  """A context running host BLAS/LAPACK on one thread (a no-op without threadpoolctl).

  scipy's OpenBLAS factorisations (potrf, getrf) on two threads of a busy machine were
  measured 1.4× (n = 3000) to 70× (n = 1000) slower than on one; triangular solves and
  matrix-vector products are not affected and keep their threads.
  """
  if not _THREADS:
    try:
      import threadpoolctl  # pylint: disable=import-outside-toplevel
      _THREADS.append(threadpoolctl.ThreadpoolController())
    except ImportError:
      _THREADS.append(None)
  ctl = _THREADS[0]
  return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")


class _Factor:
  """Cholesky factor L Lᵀ = Q_{F0F0} (+ jitter) of a base free set F0, reused for nearby F.

  A free set F = F0 − D + E is solved by bordering the base system: unknowns x_{F0}, x_E and
  multipliers μ_D that pin x_D = 0,

      [ K        Q_{F0E}  P_D ] [x_{F0}]   [f]
      [ Q_{EF0}  Q_EE     0   ] [x_E   ] = [g]       K = Q_{F0F0} = L Lᵀ,
      [ P_Dᵀ     0        0   ] [μ_D   ]   [0]

  eliminated through W = L⁻¹[Q_{F0E}, P_D] [|F0|, k] (k = |E| + |D|): the Schur complement
  S = diag(Q_EE, 0) − WᵀW [k, k] gives y = (x_E, μ_D), then x_{F0} = L⁻ᵀ(L⁻¹f − W y). The
  columns of W and their Gram matrix are kept per coordinate, so a pivot pays triangular
  solves (|F0|² each) and Gram products only for the coordinates new to the border, plus
  the k × k LU of S: O(|F0|² (k_new + 2) + |F0| k k_new + k³) instead of |F|³/3.
  """

  def __init__(self, r: int, idx_f: np.ndarray, L_ff: np.ndarray):
    self.idx_f = idx_f                          # F0, increasing coordinates
    self.pos_r = np.full(r, -1, np.intp)        # position in F0, −1 outside
    self.pos_r[idx_f] = np.arange(idx_f.size)
    self.L_ff = L_ff                            # lower triangle holds L (Fortran order)
    self.slot_r = np.full(r, -1, np.intp)       # column of W_fm kept for a coordinate
    self.W_fm = np.empty((idx_f.size, 0), order="F")
    self.G_mm = np.empty((0, 0))                # W_fmᵀ W_fm
    self.m = 0
    self.last: tuple[bytes, Any] | None = None  # (free mask, its solver): a repeated free set

  def distance(self, free_r: np.ndarray) -> tuple[int, int]:
    """(|E| + |D|, coordinates with kept border columns) for the free mask free_r."""
    return int(np.count_nonzero(free_r != (self.pos_r >= 0))), self.m

  def _border(self, Q: np.ndarray, E: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Slots of E then D in W_fm, computing the columns (and Gram entries) of new ones."""
    new_E, new_D = E[self.slot_r[E] < 0], D[self.slot_r[D] < 0]
    k_new = new_E.size + new_D.size
    if k_new:
      n0, m = self.idx_f.size, self.m
      M = np.zeros((n0, k_new), order="F")
      M[:, :new_E.size] = Q[new_E][:, self.idx_f].T           # Q symmetric: rows = columns
      M[self.pos_r[new_D], new_E.size + np.arange(new_D.size)] = 1.0
      Wn = sla.solve_triangular(self.L_ff, M, lower=True, overwrite_b=True, check_finite=False)
      if m + k_new > self.W_fm.shape[1]:       # grow the kept columns geometrically
        cap = max(2 * self.W_fm.shape[1], m + k_new, 64)
        W = np.empty((n0, cap), order="F")
        W[:, :m] = self.W_fm[:, :m]
        G = np.empty((cap, cap))
        G[:m, :m] = self.G_mm[:m, :m]
        self.W_fm, self.G_mm = W, G
      cross = self.W_fm[:, :m].T @ Wn
      self.G_mm[:m, m:m + k_new] = cross
      self.G_mm[m:m + k_new, :m] = cross.T
      self.G_mm[m:m + k_new, m:m + k_new] = Wn.T @ Wn
      self.W_fm[:, m:m + k_new] = Wn
      self.slot_r[np.concatenate([new_E, new_D])] = m + np.arange(k_new)
      self.m = m + k_new
    return self.slot_r[np.concatenate([E, D])]

  def solver(self, Q: np.ndarray, free_r: np.ndarray):
    """rhs_r ↦ x_r [r], zero off F, with Q_FF x_F = rhs_F (rhs read on F only)."""
    key = np.packbits(free_r).tobytes()
    if self.last is not None and self.last[0] == key:
      return self.last[1]
    in0 = self.pos_r >= 0
    E, D = np.flatnonzero(free_r & ~in0), np.flatnonzero(in0 & ~free_r)
    if E.size or D.size:
      sl = self._border(Q, E, D)
      W = self.W_fm[:, sl]
      S = -self.G_mm[np.ix_(sl, sl)]
      S[:E.size, :E.size] += Q[np.ix_(E, E)]
      with _one_thread():
        lu = sla.lu_factor(S, overwrite_a=True, check_finite=False)

    def apply(rhs_r: np.ndarray) -> np.ndarray:
      x_r = np.where(free_r, rhs_r, 0.0)
      z = sla.solve_triangular(self.L_ff, x_r[self.idx_f], lower=True, check_finite=False)
      if E.size or D.size:
        g = np.zeros(E.size + D.size)
        g[:E.size] = x_r[E]
        y = sla.lu_solve(lu, g - W.T @ z, check_finite=False)
        z -= W @ y
        x_r[E] = y[:E.size]
      x_r[self.idx_f] = sla.solve_triangular(self.L_ff, z, lower=True, trans="T",
                                             check_finite=False)
      x_r[D] = 0.0
      return x_r
    self.last = (key, apply)
    return apply


def _factorise(Q: np.ndarray, idx_f: np.ndarray) -> _Factor:
  """Fresh Cholesky factor of Q_FF, with the smallest jitter of _JITTERS that factorises."""
  scale = float(np.mean(np.diag(Q)[idx_f]))
  for jitter in _JITTERS:
    a = Q[np.ix_(idx_f, idx_f)].T              # symmetric: the Fortran-ordered view factorises in place
    if jitter:
      a[np.diag_indices_from(a)] += jitter * scale
    try:
      with _one_thread():
        L, _ = sla.cho_factor(a, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
      continue
    return _Factor(Q.shape[0], idx_f, L)
  # Numerically singular beyond every jitter: a stronger one, refinement does the rest.
  a = Q[np.ix_(idx_f, idx_f)].T
  a[np.diag_indices_from(a)] += 1e-5 * scale + np.finfo(np.float64).tiny
  return _Factor(Q.shape[0], idx_f, sla.cho_factor(a, lower=True, overwrite_a=True,
                                                   check_finite=False)[0])


# The last factor, kept for the next solve on the same Q (a path or min_B warm-starts from a
# nearby partition): {"q": weakref to Q, "fac": _Factor}. Dropped when Q is freed.
_CACHE: dict[str, Any] = {}
_TRACE = None


def _cached_factor(Q: np.ndarray) -> _Factor | None:
  ref = _CACHE.get("q")
  return _CACHE["fac"] if ref is not None and ref() is Q else None


def _keep_factor(Q: np.ndarray, fac: _Factor) -> None:
  def drop(ref):
    if _CACHE.get("q") is ref:
      _CACHE.clear()
  try:
    ref = weakref.ref(Q, drop)
  except TypeError:                            # not weak-referenceable: keep nothing
    return
  _CACHE.clear()
  _CACHE.update(q=ref, fac=fac)


def _free_solve(Q: np.ndarray, c: np.ndarray, u_r: np.ndarray, free_r: np.ndarray,
                dmax: float, fresh: bool) -> tuple[np.ndarray, np.ndarray, float, bool]:
  """u with u_F solving Q_FF u_F = c_F − Q_FA u_A (u_r holds u_A, zero on F), and c − Qu.

  Reuses the cached factor of a nearby free set (block update) unless `fresh` or the set
  moved too far; refines against Q and falls back to a fresh factor when an update is not
  accurate to _ETA_OK. Returns (u, lam = c − Qu, η, whether the solve used a fresh factor).
  """
  fac = None if fresh else _cached_factor(Q)
  if fac is not None:
    moved, touched = fac.distance(free_r)
    if moved > _REFACTOR * fac.idx_f.size or touched > _TOUCHED * fac.idx_f.size:
      fac = None
  rhs_r = c - Q @ u_r                          # c_F − Q_FA u_A on F
  rhs_inf = float(np.abs(rhs_r[free_r]).max())
  while True:
    is_fresh = fac is None
    if is_fresh:
      _CACHE.clear()                           # free the old factor before the new one
      fac = _factorise(Q, np.flatnonzero(free_r))
      _keep_factor(Q, fac)
    apply = fac.solver(Q, free_r)
    x_r = apply(rhs_r)
    best = None
    for _ in range(_REFINE + 1):
      u = u_r + x_r
      lam = c - Q @ u
      res = np.where(free_r, lam, 0.0)        # rhs − Q_FF x on F
      eta = float(np.abs(res).max()) / (dmax * float(np.abs(x_r).sum()) + rhs_inf + 1e-300)
      if best is not None and eta >= best[0]:
        break
      best = (eta, u, lam)
      if eta <= _ETA_TINY:
        break
      x_r = x_r + apply(res)
    eta, u, lam = best
    if _TRACE is not None:
      _TRACE.append((is_fresh, int(free_r.sum()), eta, fac.distance(free_r)))
    if is_fresh or eta <= _ETA_OK:
      return u, lam, eta, is_fresh
    fac = None


def solve(p: Problem, B: float, *, state_r: np.ndarray | None = None,
          max_pivots: int | None = None, patience: int = 30) -> Solution:
  """min E(u) s.t. |u_i| ≤ B by block principal pivoting, from partition `state_r`.

  state_r (int8 [r], 0 free / ±1 at ±B) warm-starts the pivoting; None starts with every
  coordinate free, i.e. from the least-squares solution. Returns the final point (always
  feasible) with its certificate; `kkt` says whether the pivoting terminated, which it
  does unless `max_pivots` (default 100 + 2r) runs out.

  Free blocks of ≥ _UPDATE_MIN coordinates are solved from the Cholesky factor of a nearby
  free block (kept from earlier pivots, and from the previous solve on the same Q) by block
  elimination (`_Factor`), refactorised when the partition has moved by more than 1/8 of it;
  every solve is refined against Q, and a point found by updates is polished from a fresh
  factor before it is returned unless its backward error is already at rounding level.
  """
  if not B > 0:
    raise ValueError(f"B must be > 0, got {B!r}")
  Q, c = p.Q_rr, p.c_r
  r = c.shape[0]
  live = _live(p)
  dmax = float(np.diag(Q).max()) if r else 1.0
  state = (np.zeros(r, np.int8) if state_r is None else np.asarray(state_r, np.int8).copy())
  state[~live] = 0
  max_pivots = 100 + 2 * r if max_pivots is None else max_pivots
  best, budget = r + 1, patience
  u = np.zeros(r)
  kkt = False
  pivots = 0
  fresh, force_fresh = True, False
  while pivots < max_pivots:
    pivots += 1
    free = (state == 0) & live
    u = B * state.astype(np.float64)
    fresh = True
    if np.count_nonzero(free) >= _UPDATE_MIN:
      u, lam, eta, fresh = _free_solve(Q, c, u, free, dmax, force_fresh)
    else:
      if free.any():
        bound = ~free
        rhs = c[free] - Q[np.ix_(free, bound)] @ u[bound]
        u[free] = _solve_block(Q[np.ix_(free, free)], rhs)
      lam = c - Q @ u
    force_fresh = False
    # lam = −gradient/2: ≥ 0 needed at +B, ≤ 0 at −B.
    up, lo = free & (u > B), free & (u < -B)
    leave = live & (((state == 1) & (lam < 0)) | ((state == -1) & (lam > 0)))
    bad = up | lo | leave
    n_bad = int(bad.sum())
    if n_bad == 0:
      if fresh or eta <= _ETA_FINAL:
        kkt = True
        break
      force_fresh, pivots = True, pivots - 1   # polish: this partition from a fresh factor
      continue
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
  return least_squares_all([p])[0]


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
  points: list = []        # every box solution made (reusable for another eps)


def _line_root(sol: Solution, eps: float) -> float:
  """The B' where sol's lower line meets eps: v(B) > eps for every B < this (−inf if none)."""
  if sol.line_slope <= 0:
    return math.inf if sol.line_0 > eps else -math.inf
  return (sol.line_0 - eps) / sol.line_slope


def min_B(p: Problem, eps: float, *, B_max: float, ratio: float = 1.2, max_solves: int = 40,
          ls: Solution | None = None, points: list[Solution] | None = None,
          growth: float = 8.0, max_pivots: int | None = None) -> MinB:
  """Smallest B ≤ B_max with v(B) ≤ eps, bracketed to B_hi / B_lo ≤ ratio, both ends certified.

  `ls` is the least-squares Solution if already computed; `points` are solutions of the same
  problem at other B (say, from another eps: their lines stay valid). The search walks up
  from the left: each solve sits at the Newton step of the best line so far (≤ B*, so v never
  overshoots), at most `growth` times the last B so that it warm-starts from a nearby
  partition, while the upper end moves by secant points (convex combinations of a point above
  eps and one below, whose error is evaluated exactly). `max_pivots` caps each solve (a
  solve cut short still gives a valid, weaker line). MinB.points holds every solution.
  """
  if not ratio > 1:
    raise ValueError(f"ratio must be > 1, got {ratio!r}")
  r = p.c_r.shape[0]
  tiny = np.finfo(np.float64).tiny
  ls = least_squares(p) if ls is None else ls
  zero = certify(p, np.zeros(r), 0.0)
  solved: list[Solution] = [zero] + [s for s in (points or []) if s.B > 0]
  B_lo = max(max(_line_root(s, eps) for s in solved), 0.0)
  solves, max_gap = 0, 0.0

  def done(status: str, B_lo: float, B_hi: float, hi: Solution | None,
           lower_max: float) -> MinB:
    return MinB(status=status, eps=float(eps), B_lo=float(B_lo), B_hi=float(B_hi),
                error_hi=hi.error if hi is not None else float("nan"),
                u_hi=None if hi is None else hi.u_r, u0_hi=hi.u0 if hi is not None else 0.0,
                ls_error=ls.error, ls_B=ls.B, lower_at_B_max=float(lower_max), solves=solves,
                max_gap=max_gap, points=solved[1:])

  if p.var_y <= eps:                              # u = 0 already reaches eps
    return done("reached", 0.0, 0.0, zero, zero.lower_at(B_max))
  reaching = [s for s in solved + [ls] if s.error <= eps and s.B <= B_max]
  if reaching:
    hi = min(reaching, key=lambda s: s.B)
  elif ls.error > eps and ls.lower_at(B_max) > eps:   # the least-squares line certifies it
    return done("not_reachable", B_max, math.inf, None, ls.lower_at(B_max))
  else:
    top = solve(p, B_max, state_r=_state_from(ls.u_r, B_max), max_pivots=max_pivots)
    solves, max_gap = 1, top.gap
    solved.append(top)
    B_lo = max(B_lo, _line_root(top, eps))
    if top.error <= eps:
      hi = top
    elif top.lower > eps:
      return done("not_reachable", B_max, math.inf, None, top.lower)
    else:
      return done("unresolved", B_lo, math.inf, None, top.lower)

  def secant(a: Solution, b: Solution) -> Solution | None:
    """The convex combination of a (error > eps) and b (error ≤ eps) whose chord value is eps."""
    if not (a.error > eps >= b.error):
      return None
    t = (a.error - eps) / (a.error - b.error)
    u = (1 - t) * a.u_r + t * b.u_r
    B = float(np.abs(u).max())
    s = certify(p, u, max(B, tiny), _state_from(u, B))
    return s if s.error <= eps else None

  def closed() -> bool:
    return hi.B <= ratio * max(B_lo, tiny)

  while not closed() and solves < max_solves:
    left = max((s for s in solved if s.error > eps), key=lambda s: s.B)
    sec = secant(left, hi)
    if sec is not None and sec.B < hi.B:
      hi = sec
      if closed():
        break
    if left.B > 0:
      B_t = min(B_lo, growth * left.B)
      if B_t <= left.B * (1 + 1e-9):         # the line of `left` is not tight: bisect instead
        B_t = math.sqrt(left.B * hi.B)
      state = left.state_r
    else:                                    # the first solve: from least squares
      B_t = max(B_lo, hi.B / growth**2)
      state = None
    B_t = min(B_t, hi.B / math.sqrt(ratio))
    sol = solve(p, B_t, state_r=state, max_pivots=max_pivots)
    solves += 1
    max_gap = max(max_gap, sol.gap)
    solved.append(sol)
    B_lo = max(B_lo, _line_root(sol, eps))   # ≤ B_t whenever sol reaches eps
    if sol.error <= eps and sol.B < hi.B:
      hi = sol
  lower_max = max(s.lower_at(B_max) for s in solved + [ls])
  return done("reached" if closed() else "unresolved", B_lo, hi.B, hi, lower_max)
