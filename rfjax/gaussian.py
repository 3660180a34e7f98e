"""Exact Gaussian expectations of ridge functions (docs/theory.md, 'Exact Gaussian moments',
'Exact mode for any activation').

x ~ N(0, I_d). Every function is jittable, takes its dtype from its inputs (float64 when
given float64) and is written elementwise so that it broadcasts and vmaps.
"""
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special as jsp
from jax.typing import ArrayLike

_SQRT2 = float(np.sqrt(2.0))
_SQRT2PI = float(np.sqrt(2.0 * np.pi))
_INV_SQRT2PI = float(1.0 / np.sqrt(2.0 * np.pi))
_SQRT_PI_2 = float(np.sqrt(np.pi / 2.0))

# Mills-ratio continued fraction (used for t < -_CF_X0), terms in backward recurrence.
_CF_X0 = 3.0
_CF_TERMS = 90

# Gauss-Legendre nodes on [-1, 1] for the Drezner-Wesolowsky / Genz integrals (20 points).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)


def norm_pdf(z: ArrayLike) -> jax.Array:
  """Standard normal density φ(z), elementwise."""
  z = jnp.asarray(z)
  return jnp.exp(-0.5 * z * z) * _INV_SQRT2PI


def norm_cdf(z: ArrayLike) -> jax.Array:
  """Standard normal CDF Φ(z), elementwise (accurate in the lower tail)."""
  return jsp.ndtr(jnp.asarray(z))


def _mills_tails(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(M, T1, T2) for x >= _CF_X0: M = Φ̄(x)/φ(x) = 1/(x+T1), T_n = n/(x+T_{n+1})."""
  t = jnp.zeros_like(x)
  for n in range(_CF_TERMS, 2, -1):
    t = n / (x + t)
  t2 = 2.0 / (x + t)
  t1 = 1.0 / (x + t2)
  return 1.0 / (x + t1), t1, t2


@jax.jit
def _g_and_s2(t: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """G(t) = φ(t) + tΦ(t) = E[z+t]_+ and S(t) = tG(t) + Φ(t) = E[z+t]_+^2, both stable."""
  t = jnp.asarray(t)
  # Upper branch: no cancellation for t >= -_CF_X0 up to a factor ~ (1 + t^2).
  phi, cdf = norm_pdf(t), norm_cdf(t)
  g_hi = phi + t * cdf
  s_hi = t * g_hi + cdf
  # Lower tail (t < -_CF_X0): with x = -t, G = φ(x) T1 M and S = φ(x) M T1 T2 (docs/theory.md);
  # every factor is positive, so there is no cancellation at any depth.
  x = jnp.maximum(-t, _CF_X0)
  m, t1, t2 = _mills_tails(x)
  phx = norm_pdf(x)
  g_lo = phx * t1 * m
  s_lo = phx * m * t1 * t2
  lo = t < -_CF_X0
  return jnp.where(lo, g_lo, g_hi), jnp.where(lo, s_lo, s_hi)


def g_fn(t: ArrayLike) -> jax.Array:
  """G(t) = φ(t) + tΦ(t) = E[z + t]_+, stable for t ≪ 0 (docs/theory.md, 'Exact Gaussian
  moments')."""
  return _g_and_s2(t)[0]


def s2_fn(t: ArrayLike) -> jax.Array:
  """S(t) = tG(t) + Φ(t) = E[z + t]_+^2, stable for t ≪ 0 (docs/theory.md, 'Exact Gaussian
  moments')."""
  return _g_and_s2(t)[1]


def relu_gauss_mean(s: ArrayLike, b: ArrayLike) -> jax.Array:
  """E[s z + b]_+ = s G(b/s) for s > 0, z ~ N(0,1) (docs/theory.md, 'Exact Gaussian moments')."""
  s, b = jnp.asarray(s), jnp.asarray(b)
  return s * g_fn(b / s)


def relu_gauss_second(s: ArrayLike, b: ArrayLike) -> jax.Array:
  """E[s z + b]_+^2 = s^2 (t G(t) + Φ(t)), t = b/s, s > 0 (docs/theory.md, 'Exact Gaussian
  moments')."""
  s, b = jnp.asarray(s), jnp.asarray(b)
  return s * s * s2_fn(b / s)


def _bvn_upper(h: jax.Array, k: jax.Array, r: jax.Array) -> jax.Array:
  """P(X > h, Y > k) for standard BVN with correlation r (Genz's bvnu, 20-point GL)."""
  dt = h.dtype
  xs = jnp.asarray(_GL_X, dt)
  ws = jnp.asarray(_GL_W, dt)
  hk = h * k
  # |r| < 0.925: Drezner-Wesolowsky integral over asin(r) with 20 Gauss-Legendre nodes.
  rr = jnp.clip(r, -0.925, 0.925)
  hs = 0.5 * (h * h + k * k)
  asr = jnp.arcsin(rr)
  low = jnp.zeros_like(h)
  for i in range(20):
    sn = jnp.sin(asr * (xs[i] + 1.0) * 0.5)
    low = low + ws[i] * jnp.exp((sn * hk - hs) / (1.0 - sn * sn))
  low = low * asr / (4.0 * np.pi) + norm_cdf(-h) * norm_cdf(-k)
  # |r| >= 0.925: Genz's expansion around |r| = 1.
  neg = r < 0
  kk = jnp.where(neg, -k, k)
  hk2 = jnp.where(neg, -hk, hk)
  rabs = jnp.clip(jnp.abs(r), 0.925, 1.0)
  as_ = (1.0 - rabs) * (1.0 + rabs)
  a = jnp.sqrt(as_)
  bs = (h - kk) ** 2
  c = (4.0 - hk2) / 8.0
  d = (12.0 - hk2) / 16.0
  a_safe = jnp.where(a > 0, a, 1.0)
  as_safe = jnp.where(a > 0, as_, 1.0)
  e1 = -0.5 * (bs / as_safe + hk2)
  bvn = jnp.where(
      (e1 > -100.0) & (a > 0),
      a * jnp.exp(jnp.maximum(e1, -100.0)) * (1.0 - c * (bs - as_) * (1.0 - d * bs / 5.0) / 3.0
                                              + c * d * as_ * as_ / 5.0),
      0.0)
  b = jnp.sqrt(bs)
  sp = _SQRT2PI * norm_cdf(-b / a_safe)
  bvn = jnp.where((hk2 > -100.0) & (a > 0),
                  bvn - jnp.exp(-0.5 * jnp.maximum(hk2, -100.0)) * sp * b
                  * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0), bvn)
  ah = 0.5 * a
  for i in range(20):
    xs_i = (ah * (xs[i] + 1.0)) ** 2
    xs_safe = jnp.where(xs_i > 0, xs_i, 1.0)
    rs = jnp.sqrt(1.0 - xs_i)
    e2 = -0.5 * (bs / xs_safe + hk2)
    spp = 1.0 + c * xs_i * (1.0 + d * xs_i)
    ep = jnp.exp(-hk2 * (1.0 - rs) / (2.0 * (1.0 + rs))) / rs
    term = ah * ws[i] * jnp.exp(jnp.maximum(e2, -100.0)) * (ep - spp)
    bvn = bvn + jnp.where((e2 > -100.0) & (xs_i > 0), term, 0.0)
  bvn = -bvn / (2.0 * np.pi)
  pos_part = bvn + norm_cdf(-jnp.maximum(h, kk))
  big_l = jnp.where(h < 0, norm_cdf(kk) - norm_cdf(h), norm_cdf(-h) - norm_cdf(-kk))
  neg_part = jnp.where(h >= kk, -bvn, big_l - bvn)
  high = jnp.where(neg, neg_part, pos_part)
  out = jnp.where(jnp.abs(r) < 0.925, low, high)
  return jnp.clip(out, 0.0, 1.0)


@jax.jit
def bvn_cdf(h: ArrayLike, k: ArrayLike, rho: ArrayLike) -> jax.Array:
  """Φ2(h, k; ρ) = P(X <= h, Y <= k), Genz's algorithm, all ρ in [-1, 1], elementwise."""
  h, k, rho = jnp.asarray(h), jnp.asarray(k), jnp.asarray(rho)
  dt = jnp.result_type(h, k, rho, 0.0)
  h, k, rho = (jnp.asarray(v, dt) for v in (h, k, rho))
  return _bvn_upper(-h, -k, rho)


def _relu_relu_deg(h: jax.Array, k: jax.Array, sign: float) -> jax.Array:
  """E[(U+h)_+(V+k)_+] at ρ = ±1, in units of σ_X σ_Y (docs/theory.md, 'Exact Gaussian
  moments')."""
  if sign > 0:  # V = U: ∫_{z > -min(h,k)} (z+h)(z+k) φ = S(lo) + (hi - lo) G(lo).
    lo, hi = jnp.minimum(h, k), jnp.maximum(h, k)
    g, s2 = _g_and_s2(lo)
    return s2 + (hi - lo) * g
  # V = -U: ∫_{a}^{b} (z - a)(b - z) φ dz, a = -h, b = k, zero when a >= b.
  a, b = -h, k
  val = b * norm_pdf(a) - a * norm_pdf(b) - (1.0 + a * b) * (norm_cdf(b) - norm_cdf(a))
  return jnp.where(a < b, jnp.maximum(val, 0.0), 0.0)


_DEG_EPS = 1e-9   # switch to the degenerate forms (plus first-order slope) for 1 - |ρ| < this


@jax.jit
def relu_relu(sx: ArrayLike, b: ArrayLike, sy: ArrayLike, c: ArrayLike,
              rho: ArrayLike) -> jax.Array:
  """E[X_+ Y_+], X = sx U + b, Y = sy V + c, corr(U, V) = ρ, sx, sy > 0 (docs/theory.md,
  'Exact Gaussian moments')."""
  sx, b, sy, c, rho = (jnp.asarray(v) for v in (sx, b, sy, c, rho))
  dt = jnp.result_type(sx, b, sy, c, rho, 0.0)
  sx, b, sy, c, rho = (v.astype(dt) for v in (sx, b, sy, c, rho))
  rho = jnp.clip(rho, -1.0, 1.0)
  h, k = b / sx, c / sy
  q2 = (1.0 - rho) * (1.0 + rho)
  deg = (1.0 - jnp.abs(rho)) < _DEG_EPS
  q2s = jnp.where(deg, 0.5, q2)
  q = jnp.sqrt(q2s)
  rs = jnp.where(deg, 0.0, rho)
  alpha = (k - rs * h) / q
  beta = (h - rs * k) / q
  p2 = bvn_cdf(h, k, rs)
  phi2 = jnp.exp(-(h * h - 2.0 * rs * h * k + k * k) / (2.0 * q2s)) / (2.0 * np.pi * q)
  gen = ((h * k + rs) * p2 + h * norm_pdf(k) * norm_cdf(beta) + k * norm_pdf(h) * norm_cdf(alpha)
         + q2s * phi2)
  # Degenerate forms at ρ = ±1 with the first-order correction dE/dρ = Φ2(h, k; ρ) (Price).
  dpos = _relu_relu_deg(h, k, 1.0) - (1.0 - rho) * norm_cdf(jnp.minimum(h, k))
  dneg = (_relu_relu_deg(h, k, -1.0)
          + (1.0 + rho) * jnp.maximum(norm_cdf(h) + norm_cdf(k) - 1.0, 0.0))
  dval = jnp.where(rho > 0, dpos, dneg)
  return sx * sy * jnp.where(deg, dval, gen)


def _stein_relu(s: jax.Array, b: jax.Array) -> jax.Array:
  """E[(s U + b)_+ U] = s Φ(b/s) (Stein's lemma)."""
  return s * norm_cdf(b / s)


@functools.partial(jax.jit, static_argnums=0)
def _gram_rows(cross: Callable, wi_dc: jax.Array, bi_c: jax.Array, w_dr: jax.Array,
               b_r: jax.Array) -> jax.Array:
  """Rows of the Gram for a chunk of c features, [c, r]; cross(sx, b, sy, c, ρ) elementwise."""
  si_c, s_r = _norms(wi_dc), _norms(w_dr)
  rho_cr = jnp.matmul(wi_dc.T, w_dr, precision=jax.lax.Precision.HIGHEST) / (
      si_c[:, None] * s_r[None, :])
  return cross(si_c[:, None], bi_c[:, None], s_r[None, :], b_r[None, :], rho_cr)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _gram_blocks(cross: Callable, w_dr: jax.Array, b_r: jax.Array, chunk: int) -> jax.Array:
  """The [r, r] Gram of r > chunk features, one [chunk, chunk] block pair at a time.

  A fori_loop over the upper-triangular block pairs (i ≤ j) writes each block and its
  mirror in place (dynamic_update_slice on the loop carry; peak ≈ r² + O(chunk²)); a
  diagonal block is written as ½(G_ii + G_iiᵀ), so the result is exactly symmetric (the same
  numbers as mirroring all blocks and averaging with the transpose).
  """
  d, r = w_dr.shape
  nc = -(-r // chunk)
  pad = nc * chunk - r
  # Padded features (w = 1, b = 0) keep the norms positive; their rows are cut off at the end.
  w_dR = jnp.pad(w_dr, ((0, 0), (0, pad)), constant_values=1.0)
  b_R = jnp.pad(b_r, (0, pad))
  ii, jj = (jnp.asarray(v, jnp.int32) for v in np.triu_indices(nc))

  def body(k, g):
    i0, j0 = ii[k] * chunk, jj[k] * chunk
    wi = jax.lax.dynamic_slice_in_dim(w_dR, i0, chunk, axis=1)
    wj = jax.lax.dynamic_slice_in_dim(w_dR, j0, chunk, axis=1)
    bi = jax.lax.dynamic_slice_in_dim(b_R, i0, chunk)
    bj = jax.lax.dynamic_slice_in_dim(b_R, j0, chunk)
    # Write the block, then read it back for the mirror: with the block's elementwise
    # computation feeding two updates directly, XLA fuses it into both and runs it ~3× over.
    # One mirror write also covers a diagonal block (j0 = i0), which gets ½(G_ii + G_iiᵀ);
    # a second write to (i0, j0) would make XLA copy the whole buffer.
    g = jax.lax.dynamic_update_slice(g, _gram_rows(cross, wi, bi, wj, bj), (i0, j0))
    blk = jax.lax.dynamic_slice(g, (i0, j0), (chunk, chunk))
    return jax.lax.dynamic_update_slice(
        g, jnp.where(i0 == j0, 0.5 * (blk + blk.T), blk.T), (j0, i0))

  g = jax.lax.fori_loop(0, ii.shape[0], body, jnp.zeros((nc * chunk, nc * chunk), w_dR.dtype))
  return g[:r, :r] if pad else g


def ridge_mean(form: Any) -> jax.Array:
  """m_r = E_x f_i(x) for a RidgeForm, [r]."""
  require_x64("gaussian.ridge_mean")
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  act = activation_record(form.activation)
  if act.gaussian.affine:
    return b_r * jnp.ones_like(_norms(w_dr))
  return act_mean(act, _norms(w_dr), b_r)


def ridge_cross(form: Any, w_d: ArrayLike, b: ArrayLike, activation: Any) -> jax.Array:
  """c_r = E_x[f_i(x) h(<w, x> + b)] for a ridge target h (a record or a registered name)."""
  require_x64("gaussian.ridge_cross")
  f_act, h_act = activation_record(form.activation), activation_record(activation)
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  w_d = jnp.asarray(w_d)
  dt = jnp.result_type(w_dr, b_r, w_d, b, 0.0)
  w_dr, b_r, w_d = w_dr.astype(dt), b_r.astype(dt), w_d.astype(dt)
  b = jnp.asarray(b, dt)
  s_r = _norms(w_dr)
  sw = jnp.sqrt(jnp.sum(w_d * w_d))
  dot_r = jnp.matmul(w_d, w_dr, precision=jax.lax.Precision.HIGHEST)
  if f_act.gaussian.affine and h_act.gaussian.affine:
    return dot_r + b_r * b
  rho_r = dot_r / (s_r * sw)
  if h_act.gaussian.affine:    # E[f_i (sw V + b)], by Stein, written target first
    return sw * rho_r * act_stein(f_act, s_r, b_r) + b * act_mean(f_act, s_r, b_r)
  return act_cross(f_act, s_r, b_r, h_act, sw, b, rho_r)


def _ridge_target_moment(moment: Callable[..., jax.Array], w_d: ArrayLike, b: ArrayLike,
                         activation: Any) -> jax.Array:
  """moment(act, ‖w‖, b) of a ridge target h(<w, x> + b) (act_mean, act_second)."""
  act = activation_record(activation)
  w_d = jnp.asarray(w_d)
  sw = jnp.sqrt(jnp.sum(w_d * w_d))
  return moment(act, sw, jnp.asarray(b, sw.dtype))


def ridge_target_second(w_d: ArrayLike, b: ArrayLike, activation: Any) -> jax.Array:
  """E[h(<w, x> + b)^2] for a ridge target h."""
  require_x64("gaussian.ridge_target_second")
  return _ridge_target_moment(act_second, w_d, b, activation)


def ridge_target_mean(w_d: ArrayLike, b: ArrayLike, activation: Any) -> jax.Array:
  """E[h(<w, x> + b)] for a ridge target h."""
  require_x64("gaussian.ridge_target_mean")
  return _ridge_target_moment(act_mean, w_d, b, activation)


def arccos1(x_nd: ArrayLike, y_md: ArrayLike) -> jax.Array:
  """E_g[<g,x>]_+[<g,y>]_+ = |x||y|(sin θ + (π-θ) cos θ)/(2π), [n, m] (docs/theory.md,
  'Exact Gaussian moments')."""
  x_nd, y_md = jnp.asarray(x_nd), jnp.asarray(y_md)
  nx_n = jnp.sqrt(jnp.sum(x_nd * x_nd, axis=1))
  ny_m = jnp.sqrt(jnp.sum(y_md * y_md, axis=1))
  dot = jnp.matmul(x_nd, y_md.T, precision=jax.lax.Precision.HIGHEST)
  nn = nx_n[:, None] * ny_m[None, :]
  cos = jnp.clip(dot / jnp.where(nn > 0, nn, 1.0), -1.0, 1.0)
  theta = jnp.arccos(cos)
  return nn * (jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0)) + (np.pi - theta) * cos) / (2 * np.pi)


# ----------------------------------------------------------------------------------------------
# Exact mode for any activation (docs/theory.md, 'Exact mode for any activation').
#
# An activation record (rfjax.activations.Activation) carries `gaussian`, a GaussianRules of
# closed forms; every moment below dispatches on that record and falls back to float64 split
# Gauss-Legendre quadrature over the Gaussian, split at the kinks the record declares.

X64_FIX = ("exact mode needs float64: call jax.config.update('jax_enable_x64', True) before "
           "any JAX computation (the rfjax command line does this)")


def require_x64(what: str = "exact mode") -> None:
  """Raises RuntimeError (one line naming the fix) unless jax_enable_x64 is on."""
  if not jax.config.jax_enable_x64:
    raise RuntimeError(f"rfjax {what}: {X64_FIX}")


def activation_record(activation: Any) -> Any:
  """The Activation record of `activation` (a record, or a registered name) with exact rules.

  ValueError naming the activation when it has no exact mode (its record's `gaussian` is None).
  """
  from rfjax import activations  # pylint: disable=import-outside-toplevel
  act = activations.get(activation) if isinstance(activation, str) else activation
  if getattr(act, "gaussian", None) is None:
    raise ValueError(f"activation {getattr(act, 'name', act)!r} has no exact mode (its record "
                     "declares no GaussianRules); known with exact mode: "
                     f"{activations.exact_names()}")
  return act


# Split quadrature: [-_Q_L, _Q_L] (φ(12) ≈ 5e-32) in _Q_PANELS panels, plus one break per kink,
# _Q_N Gauss-Legendre nodes per panel (1-D moments) and _Q_N2 per panel and axis (2-D).
_Q_L = 12.0
_Q_PANELS = 12
_Q_N = 24
_Q_N2 = 16
_QX, _QW = np.polynomial.legendre.leggauss(_Q_N)
_QX2, _QW2 = np.polynomial.legendre.leggauss(_Q_N2)


def _split_nodes(kinks: jax.Array, dt: Any, n: int = _Q_N) -> tuple[jax.Array, jax.Array]:
  """Nodes z and weights w·φ(z) of ∫ g(z) φ(z) dz, panels split at `kinks` [k] (traced).
  [N] each."""
  xs, ws = (_QX, _QW) if n == _Q_N else (_QX2, _QW2)
  base = jnp.asarray(np.linspace(-_Q_L, _Q_L, _Q_PANELS + 1), dt)
  br = jnp.sort(jnp.concatenate([base, jnp.clip(jnp.asarray(kinks, dt), -_Q_L, _Q_L)]))
  lo, hi = br[:-1, None], br[1:, None]
  z = 0.5 * (lo + hi) + 0.5 * (hi - lo) * jnp.asarray(xs, dt)[None, :]
  w = 0.5 * (hi - lo) * jnp.asarray(ws, dt)[None, :]
  return z.ravel(), (w * norm_pdf(z)).ravel()


def _kinks_z(act: Any, s: jax.Array, b: jax.Array) -> jax.Array:
  """The kinks of z -> σ(s z + b) in z, [k]."""
  k = jnp.asarray(act.gaussian.kinks, s.dtype) if act.gaussian.kinks else jnp.zeros((0,), s.dtype)
  return (k - b) / s


def _quad_1d(act: Any, s: jax.Array, b: jax.Array, weight: Callable) -> jax.Array:
  """E[weight(Z, σ(sZ + b))] by split quadrature, scalar s > 0, b."""
  z, w = _split_nodes(_kinks_z(act, s, b), s.dtype)
  return jnp.sum(w * weight(z, act.fn(s * z + b)))


def _vec1(act: Any, weight: Callable, s: ArrayLike, b: ArrayLike) -> jax.Array:
  s, b = jnp.asarray(s), jnp.asarray(b)
  dt = jnp.result_type(s, b, 0.0)
  return jnp.vectorize(lambda ss, bb: _quad_1d(act, ss, bb, weight))(s.astype(dt), b.astype(dt))


def act_mean(activation: Any, s: ArrayLike, b: ArrayLike) -> jax.Array:
  """E σ(sZ + b), Z ~ N(0, 1), s > 0 (closed form from the record, else quadrature)."""
  act = activation_record(activation)
  if act.gaussian.mean is not None:
    return act.gaussian.mean(jnp.asarray(s), jnp.asarray(b))
  return _vec1(act, lambda z, f: f, s, b)


def act_second(activation: Any, s: ArrayLike, b: ArrayLike) -> jax.Array:
  """E σ(sZ + b)², s > 0."""
  act = activation_record(activation)
  if act.gaussian.second is not None:
    return act.gaussian.second(jnp.asarray(s), jnp.asarray(b))
  return _vec1(act, lambda z, f: f * f, s, b)


def act_stein(activation: Any, s: ArrayLike, b: ArrayLike) -> jax.Array:
  """E[Z σ(sZ + b)] (= s E σ'(sZ + b) by Stein's lemma where σ' exists), s > 0."""
  act = activation_record(activation)
  if act.gaussian.stein is not None:
    return act.gaussian.stein(jnp.asarray(s), jnp.asarray(b))
  return _vec1(act, lambda z, f: z * f, s, b)


# Graded breaks around a smoothed kink, in units of its width q/|ρ|.
_GRADE = np.array([-8.0, -2.0, -0.5, 0.0, 0.5, 2.0, 8.0])


def near_kinks(kinks: jax.Array, s: jax.Array, b: jax.Array, rho: jax.Array,
               q: jax.Array) -> jax.Array:
  """Breaks at u_κ + g·q/|ρ| (g in _GRADE) around the points u_κ = ((κ − b)/s)/ρ where
  u -> E_Z σ(s(ρu + qZ) + b) turns, [k·7]; far outside the panels when ρ = 0."""
  ra = jnp.abs(rho)
  rs = jnp.where(ra > 0, rho, 1.0)
  centre = jnp.where(ra > 0, ((kinks - b) / s) / rs, 2.0 * _Q_L)
  width = q / jnp.where(ra > 0, ra, 1.0)
  return (centre[:, None] + jnp.asarray(_GRADE, s.dtype)[None, :] * width).ravel()


def _quad_cross(f: Any, g: Any, sx, b, sy, c, rho) -> jax.Array:
  """E[f(sx U + b) g(sy V + c)], corr(U, V) = ρ, scalars: V = ρU + qZ, Z ⟂ U; the outer
  integral over U split at f's kinks, the inner over Z at g's (which move with U)."""
  dt = sx.dtype
  q = jnp.sqrt(jnp.maximum((1.0 - rho) * (1.0 + rho), 0.0))
  qs = jnp.where(q > 0, q, 1.0)
  kg = jnp.asarray(g.gaussian.kinks, dt) if g.gaussian.kinks else jnp.zeros((0,), dt)
  # U -> E[g(...) | U] is smooth but turns within q/|ρ| of g's kinks: graded breaks there.
  u, wu = _split_nodes(jnp.concatenate([_kinks_z(f, sx, b), near_kinks(kg, sy, c, rho, q)]),
                       dt, _Q_N2)

  def inner(ui):
    z, wz = _split_nodes(((kg - c) / sy - rho * ui) / qs, dt, _Q_N2)
    smooth = jnp.sum(wz * g.fn(sy * (rho * ui + qs * z) + c))
    return jnp.where(q > 0, smooth, g.fn(sy * rho * ui + c))

  return jnp.sum(wu * f.fn(sx * u + b) * jax.vmap(inner)(u))


def act_cross(f_act: Any, sx: ArrayLike, b: ArrayLike, g_act: Any, sy: ArrayLike, c: ArrayLike,
              rho: ArrayLike) -> jax.Array:
  """E[f(sx U + b) g(sy V + c)], U, V standard normal with corr ρ, sx, sy > 0; broadcasts.

  An affine record (σ(z) = z) pairs with anything by Stein's lemma, E[(sx U + b) g(Y)] =
  sx ρ E[Z g(sy Z + c)] + b E g(sy Z + c); a record paired with itself uses its own `cross`;
  any other pair is integrated by split quadrature.
  """
  f, g = activation_record(f_act), activation_record(g_act)
  args = [jnp.asarray(v) for v in (sx, b, sy, c, rho)]
  dt = jnp.result_type(*args, 0.0)
  sx, b, sy, c, rho = (v.astype(dt) for v in args)
  if f.gaussian.affine:
    return sx * rho * act_stein(g, sy, c) + b * act_mean(g, sy, c)
  if g.gaussian.affine:
    return sy * rho * act_stein(f, sx, b) + c * act_mean(f, sx, b)
  if f.gaussian is g.gaussian and f.gaussian.cross is not None:
    return f.gaussian.cross(sx, b, sy, c, rho)
  return jnp.vectorize(lambda *a: _quad_cross(f, g, *a))(sx, b, sy, c, jnp.clip(rho, -1, 1))


def exact_method(activation: Any) -> str:
  """"closed_form" if every moment of the record (mean, second, cross, ψ) is a closed form or
  affine; "quadrature" if some are integrated; ValueError without exact mode."""
  rules = activation_record(activation).gaussian
  if rules.affine:
    return "closed_form"
  closed = all(v is not None for v in (rules.mean, rules.second, rules.stein, rules.cross,
                                       rules.psi_corr))
  return "closed_form" if closed else "quadrature"


# ----------------------------------------------------------------------------------------------
# Ridge features f_i(x) = σ(<w_i, x> + b_i) (a features.RidgeForm) against ridge targets.


def _norms(w_dr: jax.Array) -> jax.Array:
  """Column norms |w_i|, [r]."""
  return jnp.sqrt(jnp.sum(w_dr * w_dr, axis=0))


def ridge_gram(form: Any, chunk: int = 512) -> jax.Array:
  """G_rr = E_x[f_i(x) f_j(x)] for a RidgeForm of any activation with exact mode, streamed."""
  require_x64("gaussian.ridge_gram")
  act = activation_record(form.activation)
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  dt = jnp.result_type(w_dr, b_r, 0.0)
  w_dr, b_r = w_dr.astype(dt), b_r.astype(dt)
  if act.gaussian.affine:
    return jnp.matmul(w_dr.T, w_dr, precision=jax.lax.Precision.HIGHEST) + jnp.outer(b_r, b_r)
  if act.gaussian.cross is not None:
    cross = act.gaussian.cross
  else:
    cross = _QuadCross(act)
  d, r = w_dr.shape
  if r <= chunk:
    g = _gram_rows(cross, w_dr, b_r, w_dr, b_r)
    return 0.5 * (g + g.T)
  return _gram_blocks(cross, w_dr, b_r, chunk)


class _QuadCross(NamedTuple):
  """The quadrature cross moment of one activation with itself, hashable for jit."""
  act: Any

  def __call__(self, sx, b, sy, c, rho):
    return jnp.vectorize(lambda *a: _quad_cross(self.act, self.act, *a))(
        *jnp.broadcast_arrays(sx, b, sy, c, jnp.clip(rho, -1, 1)))
