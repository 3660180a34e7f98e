"""The hard target ψ (docs/theory.md, 'ψ and Prop. 4.4') and its exact correlations with
ridge features.

ψ(z) = T(clip(z, -A, A)), T the triangle sine of period 4, A = 4m + 1. For U, V standard
normal with corr(U, V) = ρ and a ridge feature h(sV + b) (h = relu or linear) we compute
  F = E[h(sV + b) ψ(RU)]
exactly, down to values far below 1e-80:

  For h = relu, s F(b/s) with F(β) = E[[V+β]_+ ψ(RU)] = ρ L / 2 + H(β) / 2, where
  L = E[U ψ(RU)] (Stein, plus its cut-off part) and H(β) = E[|V+β| ψ(RU)] is odd in β.
  H/2 = T-part (Fourier series of T with the Faddeeva function, using
  G(ζ) = ζ + G(-ζ) so that w is only evaluated in the upper half-plane)
      + cut-off part ∫_{u > A/R} (ψ - T)(Ru) Ẽ(u) φ(u) du,
  with Ẽ(u) = E[[V+β]_+|U=u] - E[[V+β]_+|U=-u] - ρu, by Gauss-Legendre split at the
  kinks of T. Splitting off ρL/2 keeps the tiny bias-free part free of Faddeeva round-off.
  Where the series converges slowly (π²R²(1-ρ²)/8 < 1/2, |ρ| near 1) H/2 is instead integrated
  directly over all kinks of ψ(Ru), graded around the near-kink u = |β/ρ| of Ẽ.
These are the closed forms of the relu and linear activation records (`relu_psi_corr`,
`linear_psi_corr`). An activation record without one gets F by split quadrature over ψ's
kinks (docs/theory.md, 'Exact mode for any activation'), resolved to about 1e-15.
R, m and the activation record are static; s, b, ρ may be traced.
"""
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rfjax import gaussian

_INV_SQRT_PI = float(1.0 / np.sqrt(np.pi))
_SQRT2 = float(np.sqrt(2.0))

# Faddeeva w(z) (upper half-plane): Weideman's rational approximation for |z| < _W_R0, Laplace
# continued fraction beyond (both measured against scipy.special.wofz, tests/test_psi.py).
_W_N = 40
_W_R0 = 6.0
_W_CF_TERMS = 40

# Series / quadrature settings.
_SERIES_TERMS = 10      # odd k = 1, 3, ..., 19
_X_DIRECT = 0.5         # use direct quadrature where π²R²q²/8 < this
_U_DIRECT = 12.0        # direct quadrature stops here: φ(12) ≈ 5e-32, far below |F| there
_GL_N = 20              # Gauss-Legendre nodes per panel
_TAIL_NATS = 45.0       # the tail quadrature stops where φ has fallen by e^-45 from u = A/R
_GRADE = np.array([-8.0, -2.0, -0.5, 0.0, 0.5, 2.0, 8.0])  # near-kink points, units of q/|ρ|
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_N)


class PsiParams(NamedTuple):
  """R = |w*|, m the cut-off parameter, A = 4m + 1 (docs/theory.md, 'ψ and Prop. 4.4')."""
  R: float
  m: int
  A: int


def psi_params(d: int) -> PsiParams:
  """PsiParams(R=d, m=ceil(d^2/4), A=4m+1) (m = ⌈d²/4⌉, docs/theory.md)."""
  m = -(-d * d // 4)
  return PsiParams(R=float(d), m=int(m), A=int(4 * m + 1))


def triangle(z: ArrayLike) -> jax.Array:
  """T(z) = 1 - |((z + 1) mod 4) - 2|, elementwise (odd, period 4, T(1) = 1)."""
  z = jnp.asarray(z)
  return 1.0 - jnp.abs(jnp.mod(z + 1.0, 4.0) - 2.0)


def psi(z: ArrayLike, m: int) -> jax.Array:
  """ψ(z) = T(clip(z, -A, A)), A = 4m + 1, elementwise."""
  a = 4 * m + 1
  return triangle(jnp.clip(jnp.asarray(z), -a, a))


def relu_decomposition(m: int) -> tuple[float, np.ndarray, np.ndarray]:
  """(const, coef_a, offsets_a), a = 4m + 2: ψ(z) = const + Σ coef_j [z - offsets_j]_+ (P1)."""
  a_cut = 4 * m + 1
  j = np.arange(1, 4 * m + 1)
  offsets = np.concatenate([[-a_cut], -a_cut + 2.0 * j, [a_cut]]).astype(np.float64)
  coefs = np.concatenate([[1.0], 2.0 * (-1.0) ** j, [-1.0]]).astype(np.float64)
  return -1.0, coefs, offsets


def psi_relu_sum(z: ArrayLike, m: int) -> jax.Array:
  """ψ(z) from its a = 4m+2 ReLUs, accumulated sequentially in offset order (exact to
  rounding)."""
  z = jnp.asarray(z)
  const, coefs, offsets = relu_decomposition(m)
  dt = jnp.result_type(z, 0.0)
  z = z.astype(dt)

  def step(acc, co):
    return acc + co[0] * jnp.maximum(z - co[1], 0.0), None

  acc, _ = jax.lax.scan(step, jnp.full_like(z, const),
                        (jnp.asarray(coefs, dt), jnp.asarray(offsets, dt)))
  return acc


# ----------------------------------------------------------------------------------------------
# Faddeeva function.

@functools.lru_cache(maxsize=None)
def _weideman_coefs(n: int) -> tuple[float, np.ndarray]:
  """Weideman (1994) coefficients a_1..a_N (highest power first) and L."""
  mm = 2 * n
  k = np.arange(-mm + 1, mm)
  big_l = np.sqrt(n / np.sqrt(2.0))
  t = big_l * np.tan(k * np.pi / mm / 2.0)
  f = np.concatenate([[0.0], np.exp(-t * t) * (big_l**2 + t * t)])
  a = np.real(np.fft.fft(np.fft.fftshift(f))) / (2 * mm)
  return float(big_l), a[1:n + 1][::-1].copy()


def _cf_tail(z: jax.Array) -> jax.Array:
  """T1 of the Laplace continued fraction w(z) = (i/√π)/(z - T1), T_n = (n/2)/(z - T_{n+1})."""
  t = jnp.zeros_like(z)
  for n in range(_W_CF_TERMS, 0, -1):
    t = (0.5 * n) / (z - t)
  return t


def _weideman(z: jax.Array) -> jax.Array:
  """w(z) by Weideman's rational approximation with N = _W_N (Im z >= 0)."""
  big_l, a = _weideman_coefs(_W_N)
  den = big_l - 1j * z
  zz = (big_l + 1j * z) / den
  p = jnp.zeros_like(z)
  for c in a:
    p = p * zz + c
  return 2.0 * p / (den * den) + _INV_SQRT_PI / den


def faddeeva(z: ArrayLike) -> jax.Array:
  """w(z) = exp(-z²) erfc(-iz) for Im z >= 0 (complex, elementwise)."""
  z = jnp.asarray(z)
  z = z.astype(jnp.result_type(z, 1j))
  big = jnp.abs(z) >= _W_R0
  z_big = jnp.where(big, z, _W_R0 + 0j)
  z_small = jnp.where(big, 0j, z)
  w_cf = (1j * _INV_SQRT_PI) / (z_big - _cf_tail(z_big))
  return jnp.where(big, w_cf, _weideman(z_small))


def _bracket(z: jax.Array) -> jax.Array:
  """B(z) = 1/√π + i z w(z) = -(i/2) w'(z), without cancellation for large |z| (Im z >= 0)."""
  big = jnp.abs(z) >= _W_R0
  z_big = jnp.where(big, z, _W_R0 + 0j)
  z_small = jnp.where(big, 0j, z)
  t1 = _cf_tail(z_big)
  b_cf = -_INV_SQRT_PI * t1 / (z_big - t1)
  b_small = _INV_SQRT_PI + 1j * z_small * _weideman(z_small)
  return jnp.where(big, b_cf, b_small)


def relu_fourier(lam: ArrayLike, b: ArrayLike, rho: ArrayLike) -> jax.Array:
  """E[e^{iλU}[V + b]_+] = e^{-λ²/2} G(b + iλρ) , complex."""
  lam, b, rho = jnp.asarray(lam), jnp.asarray(b), jnp.asarray(rho)
  q2 = (1.0 - rho) * (1.0 + rho)
  s = jnp.where(b >= 0, 1.0, -1.0)
  z = (-s * lam * rho + 1j * jnp.abs(b)) / _SQRT2
  e_h = jnp.exp(-0.5 * lam * lam * q2 - 0.5 * b * b - 1j * b * lam * rho) * _bracket(z) / _SQRT2
  zeta = b + 1j * lam * rho
  # G(ζ) = ζ + G(-ζ) for b >= 0; e_h holds e^{-λ²/2} G(-sζ).
  return e_h + jnp.where(b >= 0, jnp.exp(-0.5 * lam * lam) * zeta, 0.0)


# ----------------------------------------------------------------------------------------------
# Static (R, m) quantities in numpy float64.

def _np_triangle(z):
  return 1.0 - np.abs(np.mod(z + 1.0, 4.0) - 2.0)


def _np_phi(u):
  return np.exp(-0.5 * u * u) / np.sqrt(2.0 * np.pi)


@functools.lru_cache(maxsize=None)
def _breaks(R: float, m: int) -> np.ndarray:
  """Static breakpoints on u >= 0: 0, the kinks (2j+1)/R of ψ(Ru) up to A/R, then tail panels."""
  a_cut = 4 * m + 1
  a = a_cut / R
  delta = -a + math.sqrt(a * a + 2.0 * _TAIL_NATS)
  n_tail = max(1, int(math.ceil(delta * R / 2.0)))
  core = np.arange(1, a_cut + 1, 2, dtype=np.float64) / R
  tail = (a_cut + 2.0 * np.arange(1, n_tail + 1)) / R
  return np.concatenate([[0.0], core, tail])


def _np_tail_nodes(R: float, m: int) -> tuple[np.ndarray, np.ndarray]:
  """GL nodes / weights over the tail u in [A/R, u_max], panels between kinks of T(Ru)."""
  br = _breaks(R, m)
  br = br[br >= (4 * m + 1) / R - 1e-15]
  lo, hi = br[:-1, None], br[1:, None]
  u = 0.5 * (lo + hi) + 0.5 * (hi - lo) * _GL_X[None, :]
  w = 0.5 * (hi - lo) * _GL_W[None, :]
  return u.ravel(), w.ravel()


@functools.lru_cache(maxsize=None)
def _lin_parts(R: float, m: int) -> tuple[float, float]:
  """(L_T, L) with L_T = E[U T(RU)] (Stein series) and L = E[U ψ(RU)] (+ cut-off)."""
  k = np.arange(1, 4001, 2, dtype=np.float64)
  expo = -(k * np.pi * R) ** 2 / 8.0
  terms = np.where(expo > -745.0, (-1.0) ** ((k - 1) / 2) / k * np.exp(np.maximum(expo, -745.0)),
                   0.0)
  l_t = 4.0 * R / np.pi * float(np.sum(terms[::-1]))
  u, w = _np_tail_nodes(R, m)
  c_l = 2.0 * float(np.sum(w * (1.0 - _np_triangle(R * u)) * u * _np_phi(u)))
  return l_t, l_t + c_l


def linear_correlation(R: float, m: int) -> float:
  """E[U ψ(RU)], U ~ N(0,1) (Stein series plus the cut-off part)."""
  return _lin_parts(float(R), int(m))[1]


def psi_norm_sq(R: float, m: int) -> float:
  """E[ψ(RU)^2] = 1/3 + Σ 4(-1)^n/(n²π²) e^{-n²π²R²/2} + cut-off part (P2)."""
  R, m = float(R), int(m)
  n = np.arange(1, 20001, dtype=np.float64)
  expo = -(n * np.pi * R) ** 2 / 2.0
  series = np.where(expo > -745.0, 4.0 * (-1.0) ** n / (n * n * np.pi**2)
                    * np.exp(np.maximum(expo, -745.0)), 0.0)
  u, w = _np_tail_nodes(R, m)
  cut = 2.0 * float(np.sum(w * (1.0 - _np_triangle(R * u) ** 2) * _np_phi(u)))
  return 1.0 / 3.0 + float(np.sum(series[::-1])) + cut


# ----------------------------------------------------------------------------------------------
# Correlation of ψ(RU) with [V + β]_+.

def _cond_odd(u: jax.Array, beta: jax.Array, rho: jax.Array, q: jax.Array) -> jax.Array:
  """Ẽ(u) = E[[V+β]_+|U=u] - E[[V+β]_+|U=-u] - ρu .

  Written as q[H((β+ρu)/q) - H((β-ρu)/q)] with the even H(t) = G(t) - t/2 = φ(|t|) +
  |t| erf(|t|/√2)/2, so that Ẽ is exactly 0 for β = 0 (bias-free ReLUs carry only the
  linear part ρu, split off analytically) and free of the cancellation G(t) - G(-t) - t.
  """
  qs = jnp.where(q > 0, q, 1.0)

  def h_even(t):
    a = jnp.abs(t)
    return gaussian.norm_pdf(a) + 0.5 * a * jax.scipy.special.erf(a / _SQRT2)

  smooth = qs * (h_even((beta + rho * u) / qs) - h_even((beta - rho * u) / qs))
  sharp = 0.5 * (jnp.abs(beta + rho * u) - jnp.abs(beta - rho * u))
  return jnp.where(q > 0, smooth, sharp)


def _relu_corr_unit(beta: jax.Array, rho: jax.Array, q: jax.Array, R: float, m: int,
                    branch: str = "auto") -> jax.Array:
  """F(β) = E[[V+β]_+ ψ(RU)] for scalar β, ρ, q = √(1-ρ²).

  branch: "auto" picks per ρ between the series (T-part by the Faddeeva series plus the
  cut-off by tail quadrature) and direct split quadrature; "series" / "direct" force one,
  for callers whose ρ are static and already partitioned (the other is then not computed).
  """
  dt = beta.dtype
  l_t, l_full = _lin_parts(R, m)
  a_r = (4 * m + 1) / R
  all_br = _breaks(R, m)
  u_max = float(all_br[-1])
  rho_abs = jnp.abs(rho)
  rho_safe = jnp.where(rho_abs > 0, rho_abs, 1.0)
  u0 = jnp.where(rho_abs > 0, jnp.abs(beta) / rho_safe, u_max)
  grade = jnp.asarray(_GRADE, dt) * q / rho_safe

  def split_quadrature(breaks: np.ndarray, low: float):
    """GL nodes and weighted Ẽφ over the static breaks plus the graded near-kink points."""
    br = jnp.sort(jnp.concatenate([jnp.asarray(breaks, dt), jnp.clip(u0 + grade, low, u_max)]))
    lo, hi = br[:-1, None], br[1:, None]
    u = 0.5 * (lo + hi) + 0.5 * (hi - lo) * jnp.asarray(_GL_X, dt)[None, :]
    w = 0.5 * (hi - lo) * jnp.asarray(_GL_W, dt)[None, :]
    return u, w * _cond_odd(u, beta, rho, q) * gaussian.norm_pdf(u)

  def series():
    # Fourier / Faddeeva T-part of H/2 .
    k = np.arange(1, 2 * _SERIES_TERMS, 2, dtype=np.float64)
    coef = jnp.asarray(8.0 / np.pi**2 * (-1.0) ** ((k - 1) / 2) / k**2, dt)
    lam = jnp.asarray(k * np.pi * R / 2.0, dt)
    s = jnp.where(beta >= 0, 1.0, -1.0)
    z = (-s * lam * rho + 1j * jnp.abs(beta)) / _SQRT2
    e_h = (jnp.exp(-0.5 * lam * lam * q * q - 0.5 * beta * beta - 1j * beta * lam * rho)
           * _bracket(z) / _SQRT2)
    t_half = jnp.sum(coef * jnp.imag(e_h)) + s * rho * l_t / 2.0
    # The cut-off part (ψ - T)(Ru) lives on the tail u > A/R only .
    u, base = split_quadrature(all_br[all_br >= a_r - 1e-15], a_r)
    cut_w = jnp.where(u > a_r, psi(R * u, m) - triangle(R * u), 0.0)
    return t_half + jnp.sum(base * cut_w)

  def direct():
    # Split Gauss-Legendre quadrature on u >= 0 over kinks of ψ(Ru), T(Ru) and Ẽ. Used only
    # where |F| is not small (ρ near ±1), so panels past u = _U_DIRECT (φ < 1e-31) are dropped.
    br = all_br[all_br < _U_DIRECT]
    u, base = split_quadrature(np.append(br, min(u_max, _U_DIRECT)), 0.0)
    return jnp.sum(base * psi(R * u, m))

  if branch == "series":
    value = series()
  elif branch == "direct":
    value = direct()
  else:
    value = jnp.where((np.pi * R * q) ** 2 / 8.0 < _X_DIRECT, direct(), series())
  return rho * l_full / 2.0 + value


def relu_psi_corr(s, b, rho, q, R: float, m: int, branch: str = "auto") -> jax.Array:
  """E[[sV + b]_+ ψ(RU)] = s F(b/s), the ReLU record's closed form (Faddeeva series)."""
  f = jnp.vectorize(lambda bb, rr, qq: _relu_corr_unit(bb, rr, qq, R, m, branch))
  return s * f(b / s, rho, q)


def linear_psi_corr(s, b, rho, q, R: float, m: int, branch: str = "auto") -> jax.Array:
  """E[(sV + b) ψ(RU)] = s ρ E[U ψ(RU)] (Stein; E ψ = 0 by oddness), the linear record's."""
  del b, q, branch
  return s * rho * _lin_parts(R, m)[1]


def _quad_psi_unit(act: Any, s, b, rho, q, R: float, m: int) -> jax.Array:
  """E[σ(sV + b) ψ(RU)] by split quadrature, scalars: ψ odd, so
  F = ∫_{u>0} ψ(Ru) [M(u) − M(−u)] φ(u) du with M(u) = E_Z σ(s(ρu + qZ) + b), the outer
  panels split at ψ(Ru)'s kinks (up to u = _U_DIRECT), the inner at σ's kinks."""
  dt = s.dtype
  br = _breaks(R, m)
  br = np.append(br[br < _U_DIRECT], min(float(br[-1]), _U_DIRECT))
  lo, hi = br[:-1, None], br[1:, None]
  qs = jnp.where(q > 0, q, 1.0)
  kinks = (jnp.asarray(act.gaussian.kinks, dt) if act.gaussian.kinks
           else jnp.zeros((0,), dt))
  # M(u) turns within q/|ρ| of ±u_κ, u_κ = ((κ − b)/s)/ρ: graded breaks there (|u| side).
  near = jnp.clip(jnp.abs(gaussian.near_kinks(kinks, s, b, rho, q)), 0.0, float(br[-1]))
  br = jnp.sort(jnp.concatenate([jnp.asarray(br, dt), near]))
  lo, hi = br[:-1, None], br[1:, None]
  u = (0.5 * (lo + hi) + 0.5 * (hi - lo) * jnp.asarray(_GL_X, dt)[None, :]).ravel()
  wu = (0.5 * (hi - lo) * jnp.asarray(_GL_W, dt)[None, :]).ravel()

  def cond_mean(ui):
    z, wz = gaussian._split_nodes(((kinks - b) / s - rho * ui) / qs, dt, gaussian._Q_N2)
    smooth = jnp.sum(wz * act.fn(s * (rho * ui + qs * z) + b))
    return jnp.where(q > 0, smooth, act.fn(s * rho * ui + b))

  odd = jax.vmap(cond_mean)(u) - jax.vmap(cond_mean)(-u)
  return jnp.sum(wu * psi(R * u, m) * odd * gaussian.norm_pdf(u))


def _corr_sbq(s, b, rho, q, R: float, m: int, act: Any, branch: str = "auto") -> jax.Array:
  """E[h(sV + b) ψ(RU)] with q = √(1-ρ²) passed explicitly (precise near |ρ| = 1); the
  record's closed form `psi_corr` if it has one, split quadrature otherwise."""
  rule = act.gaussian.psi_corr
  if rule is not None:
    return rule(s, b, rho, q, R, m, branch)
  return jnp.vectorize(lambda *a: _quad_psi_unit(act, *a, R, m))(s, b, rho, q)


def ridge_correlation(s: ArrayLike, b: ArrayLike, rho: ArrayLike, R: float, m: int,
                      activation: Any = "relu") -> jax.Array:
  """E[h(sV + b) ψ(RU)], corr(U, V) = ρ, s > 0, h any activation with exact mode (a record or
  a registered name); broadcasts over (s, b, ρ)."""
  gaussian.require_x64("psi.ridge_correlation")
  activation = gaussian.activation_record(activation)
  s, b, rho = jnp.asarray(s), jnp.asarray(b), jnp.asarray(rho)
  dt = jnp.result_type(s, b, rho, 0.0)
  s, b, rho = jnp.broadcast_arrays(s.astype(dt), b.astype(dt), jnp.clip(rho.astype(dt), -1, 1))
  q = jnp.sqrt(jnp.maximum((1.0 - rho) * (1.0 + rho), 0.0))
  return _corr_jit(s, b, rho, q, float(R), int(m), activation)


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _corr_jit(s, b, rho, q, R, m, activation):
  return _corr_sbq(s, b, rho, q, R, m, activation)


# Quadrature in τ = √(1-ρ), ρ in (0, 1): log-graded panels resolve the peak near ρ = 1.
_TAU_EDGES = np.concatenate([[0.0], np.logspace(-8, 0, 25)])
_TAU_GL_X, _TAU_GL_W = np.polynomial.legendre.leggauss(16)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _mean_abs_jit(s, b, d, R, m, activation):
  dt = s.dtype
  lo, hi = _TAU_EDGES[:-1, None], _TAU_EDGES[1:, None]
  tau = (0.5 * (lo + hi) + 0.5 * (hi - lo) * _TAU_GL_X[None, :]).ravel()
  wt = (0.5 * (hi - lo) * _TAU_GL_W[None, :]).ravel()
  t = tau * tau
  one_m_r2 = t * (2.0 - t)
  # p_d(ρ) dρ with ρ = 1 - τ²: dρ = 2τ dτ (docs/theory.md, 'Sampled w* underestimate the
  # mean'); the factor 2 below is for ρ < 0 (|F| even).
  log_beta = math.lgamma(0.5) + math.lgamma((d - 1) / 2.0) - math.lgamma(d / 2.0)
  dens = np.exp((d - 3) / 2.0 * np.log(one_m_r2) - log_beta) * 2.0 * tau
  # The nodes are static, so each is assigned to its branch here and only that one is built.
  q_np = np.sqrt(one_m_r2)
  direct = (np.pi * R * q_np) ** 2 / 8.0 < _X_DIRECT
  order = np.concatenate([np.flatnonzero(direct), np.flatnonzero(~direct)])
  t, dens, wt, q_np, direct = t[order], dens[order], wt[order], q_np[order], direct[order]
  parts = []
  for branch, sel in (("direct", direct), ("series", ~direct)):
    if sel.any():
      rho = jnp.asarray(1.0 - t[sel], dt)
      q = jnp.asarray(q_np[sel], dt)
      parts.append(_corr_sbq(jnp.full_like(rho, s), jnp.full_like(rho, b), rho, q, R, m,
                             activation, branch))
  f = jnp.concatenate(parts)
  norm = jnp.sqrt(gaussian.act_second(activation, s, b))
  return 2.0 * jnp.sum(jnp.asarray(wt * dens, dt) * jnp.abs(f)) / norm


def mean_abs_correlation(s: ArrayLike, b: ArrayLike, d: int, R: float, m: int,
                         activation: Any = "relu") -> jax.Array:
  """E_{w* ~ U(R S^{d-1})} |<f, ψ_{w*}>| / ||f|| for f = h(s<v,x> + b), |v| = 1, h any
  activation with exact mode (docs/theory.md, 'Sampled w* underestimate the mean')."""
  gaussian.require_x64("psi.mean_abs_correlation")
  activation = gaussian.activation_record(activation)
  if d < 2:
    raise ValueError(f"d must be >= 2, got {d}")
  s, b = jnp.asarray(s), jnp.asarray(b)
  dt = jnp.result_type(s, b, 0.0)
  return _mean_abs_jit(s.astype(dt), b.astype(dt), int(d), float(R), int(m), activation)


def psi_target_cross(form: Any, w_star_d: ArrayLike, m: int, R: float | None = None) -> jax.Array:
  """c_r = E[f_i(x) ψ(<w*, x>)] for ridge features f_i = act(<w_i,x> + b_i); R = |w*| (static)."""
  gaussian.require_x64("psi.psi_target_cross")
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  w_star_d = jnp.asarray(w_star_d)
  dt = jnp.result_type(w_dr, b_r, w_star_d, 0.0)
  w_dr, b_r, w_star_d = w_dr.astype(dt), b_r.astype(dt), w_star_d.astype(dt)
  if R is None:
    R = float(np.linalg.norm(np.asarray(w_star_d, dtype=np.float64)))
  s_r = jnp.sqrt(jnp.sum(w_dr * w_dr, axis=0))
  rho_r = jnp.matmul(w_star_d, w_dr, precision=jax.lax.Precision.HIGHEST) / (s_r * R)
  return ridge_correlation(s_r, b_r, rho_r, R, m, form.activation)


# ----------------------------------------------------------------------------------------------
# Coupling features f(x) = 1[<w, x> >= 0] x_j (docs/theory.md, 'Coupling features and odd targets').
#
# With 1[u >= 0] = (1 + sign u)/2, f = x_j/2 + x_j sign(<w, x>)/2. The second term is even in x
# and ψ_{w*} is odd, so under the symmetric Gaussian it is orthogonal to ψ_{w*}:
#   <f, ψ_{w*}> = <x_j, ψ_{w*}>/2 = (w*_j / R) E[U ψ(RU)] / 2      (Stein, U = <w*, x>/R),
# for EVERY w ≠ 0 (the gate drops out). And ‖f‖² = E[1[<w,x> >= 0] x_j²] = 1/2, again for every
# w ≠ 0 (x -> -x swaps the gate and keeps x_j²). Hence <f, ψ_{w*}>/‖f‖ = <x_j, ψ_{w*}>/√2, and
# E_{w*}|<f, ψ_{w*}>|/‖f‖ is the unit linear feature's ρ-integral divided by √2.

COUPLING_NORM_SQ = 0.5   # ‖1[<w,x> >= 0] x_j‖² for every w ≠ 0, x ~ N(0, I_d)


def coupling_correlation(w_star_kd: ArrayLike, j_r: ArrayLike, m: int,
                         R: float | None = None) -> jax.Array:
  """c_kr = <1[<w, x> >= 0] x_{j_r}, ψ_{w*_k}> exactly, for any gate w ≠ 0.

  w_star_kd: [k, d] (or [d]) targets w*, all of norm R (static; from the first row if None).
  j_r: [r] int coordinates j of the features. Returns [k, r] (or [r]): w*_{k, j} L / (2R) with
  L = E[U ψ(RU)] (`linear_correlation`). Divide by √COUPLING_NORM_SQ for unit-norm features.
  """
  gaussian.require_x64("psi.coupling_correlation")
  w_star_kd = jnp.asarray(w_star_kd)
  w_star_kd = w_star_kd.astype(jnp.result_type(w_star_kd, 0.0))
  if R is None:
    R = float(np.linalg.norm(np.asarray(w_star_kd, dtype=np.float64).reshape(
        -1, w_star_kd.shape[-1])[0]))
  lin = linear_correlation(float(R), int(m))
  return jnp.take(w_star_kd, jnp.asarray(j_r), axis=-1) * (lin / (2.0 * float(R)))


def coupling_mean_abs_correlation(d: int, R: float, m: int) -> jax.Array:
  """E_{w* ~ U(R S^{d-1})} |<f, ψ_{w*}>| / ‖f‖ for f = 1[<w, x> >= 0] x_j, any w ≠ 0, any j.

  = mean_abs_correlation(1, 0, d, R, m, "linear") / √2 (derivation above): the same for every
  coupling feature, a float64 scalar resolved down to the linear feature's ρ-integral.
  """
  return mean_abs_correlation(1.0, 0.0, d, R, m, "linear") / _SQRT2
