"""Exact Gaussian expectations of ReLU / linear ridge functions (PAPER.md §5, §8).

x ~ N(0, I_d). Every function is jittable, takes its dtype from its inputs (float64 when
given float64) and is written elementwise so that it broadcasts and vmaps.
"""
import functools
from typing import Any

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
  # Lower tail (t < -_CF_X0): with x = -t, G = φ(x) T1 M and S = φ(x) M T1 T2 (PAPER §8 note 5);
  # every factor is positive, so there is no cancellation at any depth.
  x = jnp.maximum(-t, _CF_X0)
  m, t1, t2 = _mills_tails(x)
  phx = norm_pdf(x)
  g_lo = phx * t1 * m
  s_lo = phx * m * t1 * t2
  lo = t < -_CF_X0
  return jnp.where(lo, g_lo, g_hi), jnp.where(lo, s_lo, s_hi)


def g_fn(t: ArrayLike) -> jax.Array:
  """G(t) = φ(t) + tΦ(t) = E[z + t]_+, stable for t ≪ 0 (PAPER §5 item 5, §8 note 5)."""
  return _g_and_s2(t)[0]


def s2_fn(t: ArrayLike) -> jax.Array:
  """S(t) = tG(t) + Φ(t) = E[z + t]_+^2, stable for t ≪ 0 (PAPER §8 note 5)."""
  return _g_and_s2(t)[1]


def relu_gauss_mean(s: ArrayLike, b: ArrayLike) -> jax.Array:
  """E[s z + b]_+ = s G(b/s) for s > 0, z ~ N(0,1) (PAPER §5 item 1)."""
  s, b = jnp.asarray(s), jnp.asarray(b)
  return s * g_fn(b / s)


def relu_gauss_second(s: ArrayLike, b: ArrayLike) -> jax.Array:
  """E[s z + b]_+^2 = s^2 (t G(t) + Φ(t)), t = b/s, s > 0 (PAPER §8 note 5)."""
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
  """E[(U+h)_+(V+k)_+] at ρ = ±1 (PAPER §8 note 6), in units of σ_X σ_Y."""
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
  """E[X_+ Y_+], X = sx U + b, Y = sy V + c, corr(U, V) = ρ, sx, sy > 0 (PAPER §5 item 3)."""
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


def _norms(w_dr: jax.Array) -> jax.Array:
  """Column norms |w_i|, [r]."""
  return jnp.sqrt(jnp.sum(w_dr * w_dr, axis=0))


def ridge_gram(form: Any, chunk: int = 512) -> jax.Array:
  """G_rr = E_x[f_i(x) f_j(x)] for a RidgeForm (relu or linear), rows chunked with lax.map."""
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  dt = jnp.result_type(w_dr, b_r, 0.0)
  w_dr, b_r = w_dr.astype(dt), b_r.astype(dt)
  if form.activation == "linear":
    return jnp.matmul(w_dr.T, w_dr, precision=jax.lax.Precision.HIGHEST) + jnp.outer(b_r, b_r)
  if form.activation != "relu":
    raise ValueError(f"unknown activation {form.activation!r}; expected 'relu' or 'linear'")
  return _relu_gram(w_dr, b_r, chunk)


@jax.jit
def _relu_gram_rows(wi_dc: jax.Array, bi_c: jax.Array, w_dr: jax.Array,
                    b_r: jax.Array) -> jax.Array:
  """Rows of the ReLU Gram for a chunk of c features, [c, r]."""
  si_c, s_r = _norms(wi_dc), _norms(w_dr)
  rho_cr = jnp.matmul(wi_dc.T, w_dr, precision=jax.lax.Precision.HIGHEST) / (
      si_c[:, None] * s_r[None, :])
  return relu_relu(si_c[:, None], bi_c[:, None], s_r[None, :], b_r[None, :], rho_cr)


def _relu_gram(w_dr: jax.Array, b_r: jax.Array, chunk: int) -> jax.Array:
  """ReLU Gram streamed block by block into one [r, r] buffer (peak ≈ r² + O(chunk²)).

  A fori_loop over the upper-triangular block pairs (i ≤ j) writes each block and its
  mirror in place (dynamic_update_slice on the loop carry); a diagonal block is written as
  ½(G_ii + G_iiᵀ), so the result is exactly symmetric (the same numbers as mirroring all
  blocks and averaging with the transpose).
  """
  d, r = w_dr.shape
  if r <= chunk:
    g = _relu_gram_rows(w_dr, b_r, w_dr, b_r)
    return 0.5 * (g + g.T)
  return _relu_gram_blocks(w_dr, b_r, chunk)


@functools.partial(jax.jit, static_argnums=2)
def _relu_gram_blocks(w_dr: jax.Array, b_r: jax.Array, chunk: int) -> jax.Array:
  """The [r, r] ReLU Gram of r > chunk features, one [chunk, chunk] block pair at a time."""
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
    g = jax.lax.dynamic_update_slice(g, _relu_gram_rows(wi, bi, wj, bj), (i0, j0))
    blk = jax.lax.dynamic_slice(g, (i0, j0), (chunk, chunk))
    return jax.lax.dynamic_update_slice(
        g, jnp.where(i0 == j0, 0.5 * (blk + blk.T), blk.T), (j0, i0))

  g = jax.lax.fori_loop(0, ii.shape[0], body, jnp.zeros((nc * chunk, nc * chunk), w_dR.dtype))
  return g[:r, :r] if pad else g


def ridge_mean(form: Any) -> jax.Array:
  """m_r = E_x f_i(x) for a RidgeForm."""
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  if form.activation == "linear":
    return b_r * jnp.ones_like(_norms(w_dr))
  return relu_gauss_mean(_norms(w_dr), b_r)


def _check_act(activation: str) -> None:
  if activation not in ("relu", "linear"):
    raise ValueError(f"unknown activation {activation!r}; expected 'relu' or 'linear'")


def ridge_cross(form: Any, w_d: ArrayLike, b: ArrayLike, activation: str) -> jax.Array:
  """c_r = E_x[f_i(x) h(<w, x> + b)] for a ridge target h in {relu, linear}."""
  _check_act(activation)
  _check_act(form.activation)
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  w_d = jnp.asarray(w_d)
  dt = jnp.result_type(w_dr, b_r, w_d, b, 0.0)
  w_dr, b_r, w_d = w_dr.astype(dt), b_r.astype(dt), w_d.astype(dt)
  b = jnp.asarray(b, dt)
  s_r = _norms(w_dr)
  sw = jnp.sqrt(jnp.sum(w_d * w_d))
  dot_r = jnp.matmul(w_d, w_dr, precision=jax.lax.Precision.HIGHEST)
  rho_r = dot_r / (s_r * sw)
  if form.activation == "relu" and activation == "relu":
    return relu_relu(s_r, b_r, sw, b, rho_r)
  if form.activation == "relu":    # E[(s U + b_i)_+ (sw V + b)], V = ρ U + q Z.
    return sw * rho_r * _stein_relu(s_r, b_r) + b * relu_gauss_mean(s_r, b_r)
  if activation == "relu":         # E[(s_i U + b_i)(sw V + b)_+].
    return s_r * rho_r * _stein_relu(sw, b) + b_r * relu_gauss_mean(sw, b)
  return dot_r + b_r * b


def ridge_target_second(w_d: ArrayLike, b: ArrayLike, activation: str) -> jax.Array:
  """E[h(<w, x> + b)^2] for h in {relu, linear}."""
  _check_act(activation)
  w_d = jnp.asarray(w_d)
  sw = jnp.sqrt(jnp.sum(w_d * w_d))
  b = jnp.asarray(b, sw.dtype)
  if activation == "linear":
    return sw * sw + b * b
  return relu_gauss_second(sw, b)


def ridge_target_mean(w_d: ArrayLike, b: ArrayLike, activation: str) -> jax.Array:
  """E[h(<w, x> + b)] for h in {relu, linear}."""
  _check_act(activation)
  w_d = jnp.asarray(w_d)
  sw = jnp.sqrt(jnp.sum(w_d * w_d))
  b = jnp.asarray(b, sw.dtype)
  if activation == "linear":
    return b
  return relu_gauss_mean(sw, b)


def arccos1(x_nd: ArrayLike, y_md: ArrayLike) -> jax.Array:
  """E_g[<g,x>]_+[<g,y>]_+ = |x||y|(sin θ + (π-θ) cos θ)/(2π), [n, m] (PAPER §5 item 2)."""
  x_nd, y_md = jnp.asarray(x_nd), jnp.asarray(y_md)
  nx_n = jnp.sqrt(jnp.sum(x_nd * x_nd, axis=1))
  ny_m = jnp.sqrt(jnp.sum(y_md * y_md, axis=1))
  dot = jnp.matmul(x_nd, y_md.T, precision=jax.lax.Precision.HIGHEST)
  nn = nx_n[:, None] * ny_m[None, :]
  cos = jnp.clip(dot / jnp.where(nn > 0, nn, 1.0), -1.0, 1.0)
  theta = jnp.arccos(cos)
  return nn * (jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0)) + (np.pi - theta) * cos) / (2 * np.pi)
