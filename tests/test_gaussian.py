"""Tests for rfjax.gaussian against scipy, 1-D/2-D quadrature and Monte Carlo
(docs/theory.md, 'Exact Gaussian moments')."""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from rfjax import gaussian


class _Form(NamedTuple):
  w_dr: jax.Array
  b_r: jax.Array
  activation: str


def _g_ref(t):
  """G(t) = φ(t) ∫_0^∞ v exp(|t| v - v²/2) ... evaluated as a well-scaled quad (t < 0)."""
  val, _ = integrate.quad(lambda v: v * np.exp(t * v - 0.5 * v * v), 0, np.inf,
                          epsabs=0, epsrel=2e-14, limit=200)
  return stats.norm.pdf(t) * val


def _s_ref(t):
  val, _ = integrate.quad(lambda v: v * v * np.exp(t * v - 0.5 * v * v), 0, np.inf,
                          epsabs=0, epsrel=2e-14, limit=200)
  return stats.norm.pdf(t) * val


def test_g_and_second_moment_deep_tail():
  ts = np.array([-37.0, -30.0, -12.5, -6.0, -3.01, -2.99, -1.0, 0.0, 0.7, 3.0, 8.0])
  g = np.asarray(gaussian.g_fn(ts))
  s = np.asarray(gaussian.s2_fn(ts))
  assert_allclose(g, [_g_ref(t) for t in ts], rtol=2e-13)
  assert_allclose(s, [_s_ref(t) for t in ts], rtol=2e-13)
  # §8 note 5: the naive form goes negative near b/s = -40; ours stays positive.
  sec = np.asarray(gaussian.relu_gauss_second(2.0, -60.0))
  assert sec > 0 and np.isfinite(sec)


def test_relu_moments_closed_form_and_mc():
  s, b = np.array([0.5, 1.0, 2.0, 3.0]), np.array([-1.0, 0.3, 0.0, 2.5])
  t = b / s
  mean_ref = s * stats.norm.pdf(t) + b * stats.norm.cdf(t)
  sec_ref = (s**2 + b**2) * stats.norm.cdf(t) + b * s * stats.norm.pdf(t)
  assert_allclose(gaussian.relu_gauss_mean(s, b), mean_ref, rtol=1e-14)
  assert_allclose(gaussian.relu_gauss_second(s, b), sec_ref, rtol=1e-13)
  z = np.random.default_rng(0).standard_normal(1_000_000)
  for si, bi, mi, vi in zip(s, b, mean_ref, sec_ref):
    y = np.maximum(si * z + bi, 0.0)
    assert abs(y.mean() - mi) < 5 * y.std() / 1e3
    assert abs((y * y).mean() - vi) < 5 * (y * y).std() / 1e3


def _bvn_quad(h, k, r):
  """Φ2 by 1-D quadrature of φ(u) Φ((k - r u)/q) with a break at the step u = k/r."""
  if abs(r) == 1.0:
    return stats.norm.cdf(min(h, k)) if r > 0 else max(0.0, stats.norm.cdf(h) + stats.norm.cdf(k) - 1)
  q = np.sqrt((1 - r) * (1 + r))
  f = lambda u: stats.norm.pdf(u) * special.ndtr((k - r * u) / q)
  pts = [-40.0, h]
  if r != 0:  # the step of width q/|r| at u = k/r, graded
    pts += [k / r + e * q / abs(r) for e in (-50, -5, -1, 0, 1, 5, 50)]
  pts = sorted(p for p in set(pts) if -40 <= p <= h)
  return sum(integrate.quad(f, a, c, epsabs=1e-16, epsrel=1e-14, limit=200)[0]
             for a, c in zip(pts[:-1], pts[1:]))


def test_bvn_cdf_vs_quadrature_and_scipy():
  rng = np.random.default_rng(1)
  h, k = rng.normal(size=60) * 1.5, rng.normal(size=60) * 1.5
  r = rng.uniform(-1, 1, 60)
  r[:16] = np.sign(r[:16]) * (1 - 10.0 ** rng.uniform(-15, -1, 16))
  r[16:20] = [1.0, -1.0, 0.925, -0.925]
  got = np.asarray(gaussian.bvn_cdf(h, k, r))
  ref = np.array([_bvn_quad(*a) for a in zip(h, k, r)])
  assert_allclose(got, ref, atol=2e-15, rtol=0)
  for i in range(20, 30):  # scipy's own (Genz) integrator
    sp = stats.multivariate_normal.cdf([h[i], k[i]], mean=[0, 0], cov=[[1, r[i]], [r[i], 1]],
                                       abseps=1e-13, releps=1e-13)
    assert abs(got[i] - sp) < 1e-12


def _relu_relu_quad(sx, b, sy, c, rho):
  """E[X+ Y+] = σxσy ∫ (u+h)_+ E[(V+k)_+|U=u] φ(u) du (docs/theory.md,
  'Exact mode for any activation'), split at the near-kink."""
  h, k = b / sx, c / sy
  q = np.sqrt((1 - rho) * (1 + rho))
  cm = lambda u: q * (stats.norm.pdf((rho * u + k) / q)
                      + (rho * u + k) / q * special.ndtr((rho * u + k) / q))
  f = lambda u: (u + h) * cm(u) * stats.norm.pdf(u)
  pts = [-h, 40.0]
  if rho != 0:  # the near-kink of width q/|ρ| at u = -k/ρ, graded
    pts += [-k / rho + e * q / abs(rho) for e in (-50, -5, -1, 0, 1, 5, 50)]
  pts = sorted(p for p in set(pts) if -h <= p <= 40.0)
  return sx * sy * sum(integrate.quad(f, a, e, epsabs=1e-16, epsrel=1e-13, limit=200)[0]
                       for a, e in zip(pts[:-1], pts[1:]))


def test_relu_relu_vs_quadrature_and_dblquad():
  rng = np.random.default_rng(2)
  for _ in range(25):
    sx, sy = rng.uniform(0.3, 3, 2)
    b, c = rng.normal(size=2) * 2
    rho = rng.uniform(-0.999, 0.999)
    got = float(gaussian.relu_relu(sx, b, sy, c, rho))
    assert abs(got - _relu_relu_quad(sx, b, sy, c, rho)) < 1e-13 * sx * sy
  for sx, b, sy, c, rho in [(1.0, 0.3, 2.0, -0.5, 0.4), (0.7, -0.2, 1.3, 0.9, -0.6)]:
    q = np.sqrt(1 - rho**2)
    f = lambda z, u: ((sx * u + b) * (sy * (rho * u + q * z) + c)
                      * stats.norm.pdf(u) * stats.norm.pdf(z))
    z_lo = lambda u: (-c / sy - rho * u) / q          # integrate over the region X, Y > 0
    ref, _ = integrate.dblquad(f, -b / sx, 12, z_lo, lambda u: max(z_lo(u), 12.0),
                               epsabs=1e-13, epsrel=1e-11)
    assert abs(float(gaussian.relu_relu(sx, b, sy, c, rho)) - ref) < 1e-9


def test_relu_relu_special_cases():
  # Zero bias: arc-cosine kernel (docs/theory.md, 'Exact Gaussian moments').
  rho = np.linspace(-1, 1, 41)
  th = np.arccos(rho)
  arc = 1.5 * 0.8 * (np.sin(th) + (np.pi - th) * rho) / (2 * np.pi)
  assert_allclose(gaussian.relu_relu(1.5, 0.0, 0.8, 0.0, rho), arc, atol=1e-15, rtol=1e-14)
  # ρ = 1, equal parameters: E[X+^2].
  for s, b in [(1.0, 0.3), (2.0, -3.0), (0.5, 1.7)]:
    assert_allclose(gaussian.relu_relu(s, b, s, b, 1.0), gaussian.relu_gauss_second(s, b),
                    rtol=1e-14)
  # Continuity through the degenerate switch near |ρ| = 1 (docs/theory.md,
  # 'Exact Gaussian moments').
  for sgn in (1.0, -1.0):
    for eps in (1e-6, 1e-8, 1e-10, 1e-12):
      got = float(gaussian.relu_relu(1.2, 0.4, 0.9, -0.1, sgn * (1 - eps)))
      assert abs(got - _relu_relu_quad(1.2, 0.4, 0.9, -0.1, sgn * (1 - eps))) < 1e-12


def test_relu_relu_mc():
  rng = np.random.default_rng(3)
  u, z = rng.standard_normal((2, 1_000_000))
  for sx, b, sy, c, rho in [(1.0, 0.5, 1.0, -0.5, 0.3), (2.0, -1.0, 0.5, 0.2, -0.8),
                            (1.0, 0.0, 1.0, 0.0, 0.99)]:
    v = rho * u + np.sqrt(1 - rho**2) * z
    y = np.maximum(sx * u + b, 0) * np.maximum(sy * v + c, 0)
    assert abs(float(gaussian.relu_relu(sx, b, sy, c, rho)) - y.mean()) < 5 * y.std() / 1e3


def _mc_features(w_dr, b_r, act, x_nd):
  z = x_nd @ w_dr + b_r
  return np.maximum(z, 0) if act == "relu" else z


@pytest.mark.parametrize("act", ["relu", "linear"])
def test_ridge_gram_mean_cross_vs_mc(act):
  rng = np.random.default_rng(4)
  d, r, n = 4, 6, 400_000
  w_dr = rng.normal(size=(d, r))
  w_dr[:, 1] = w_dr[:, 0] * 2.0       # parallel and opposite columns: ρ = ±1 exactly
  w_dr[:, 2] = -w_dr[:, 0]
  b_r = rng.normal(size=r)
  form = _Form(jnp.asarray(w_dr), jnp.asarray(b_r), act)
  x = rng.standard_normal((n, d))
  phi = _mc_features(w_dr, b_r, act, x)
  gram = np.asarray(gaussian.ridge_gram(form))
  prod = phi[:, :, None] * phi[:, None, :]
  se = prod.std(0) / np.sqrt(n)
  assert np.all(np.abs(gram - prod.mean(0)) < 5 * se + 1e-12)
  assert_allclose(gram, gram.T, atol=0)
  assert np.all(np.abs(np.asarray(gaussian.ridge_mean(form)) - phi.mean(0))
                < 5 * phi.std(0) / np.sqrt(n))
  w_t, b_t = rng.normal(size=d), 0.4
  for tact in ("relu", "linear"):
    y = _mc_features(w_t[:, None], np.array([b_t]), tact, x)[:, 0]
    c = np.asarray(gaussian.ridge_cross(form, w_t, b_t, tact))
    fy = phi * y[:, None]
    assert np.all(np.abs(c - fy.mean(0)) < 5 * fy.std(0) / np.sqrt(n))
    assert abs(float(gaussian.ridge_target_second(w_t, b_t, tact)) - (y * y).mean()) < (
        5 * (y * y).std() / np.sqrt(n))
    assert abs(float(gaussian.ridge_target_mean(w_t, b_t, tact)) - y.mean()) < (
        5 * y.std() / np.sqrt(n))


def test_ridge_gram_chunked_equals_unchunked():
  rng = np.random.default_rng(5)
  form = _Form(jnp.asarray(rng.normal(size=(3, 37))), jnp.asarray(rng.normal(size=37)), "relu")
  assert_allclose(gaussian.ridge_gram(form, chunk=8), gaussian.ridge_gram(form, chunk=64),
                  rtol=0, atol=1e-15)
  g = np.asarray(gaussian.ridge_gram(form))
  assert np.linalg.eigvalsh(g).min() > -1e-12


def _gram_all_blocks(form, chunk):
  """The Gram the way it was built before streaming: every block pair (i ≤ j) at once,
  scattered with its mirror into zeros, then averaged with the transpose."""
  w_dr, b_r = jnp.asarray(form.w_dr), jnp.asarray(form.b_r)
  d, r = w_dr.shape
  nc = -(-r // chunk)
  pad = nc * chunk - r
  w_cdc = jnp.pad(w_dr, ((0, 0), (0, pad)), constant_values=1.0).reshape(
      d, nc, chunk).transpose(1, 0, 2)
  b_cc = jnp.pad(b_r, (0, pad)).reshape(nc, chunk)
  ii, jj = np.triu_indices(nc)
  blocks = jnp.stack([gaussian._gram_rows(gaussian.relu_relu, w_cdc[i], b_cc[i], w_cdc[j],
                                          b_cc[j])
                      for i, j in zip(ii, jj)])
  g = jnp.zeros((nc, nc, chunk, chunk), blocks.dtype)
  g = g.at[ii, jj].set(blocks).at[jj, ii].set(blocks.transpose(0, 2, 1))
  g = g.transpose(0, 2, 1, 3).reshape(nc * chunk, nc * chunk)[:r, :r]
  return np.asarray(0.5 * (g + g.T))


@pytest.mark.parametrize("r,chunk", [(37, 8), (64, 16), (100, 32)])
def test_streamed_relu_gram_equals_all_blocks_at_once(r, chunk):
  """The streamed Gram (one [r, r] buffer, blocks written in place) has the same numbers as
  the all-blocks construction, padded or not, and is exactly symmetric."""
  rng = np.random.default_rng(r)
  form = _Form(jnp.asarray(rng.normal(size=(4, r))), jnp.asarray(rng.normal(size=r)), "relu")
  g = np.asarray(gaussian.ridge_gram(form, chunk=chunk))
  assert_allclose(g, _gram_all_blocks(form, chunk), rtol=1e-14, atol=1e-15)
  assert np.array_equal(g, g.T)


def test_streamed_relu_gram_lowers_to_one_buffer():
  """The compiled Gram holds one [r, r] float64 buffer plus O(chunk²): its temporaries stay
  well below a second copy (the old construction held several)."""
  r, chunk = 2048, 128
  w = jax.ShapeDtypeStruct((3, r), jnp.float64)
  b = jax.ShapeDtypeStruct((r,), jnp.float64)
  compiled = jax.jit(gaussian._gram_blocks, static_argnums=(0, 3)).lower(
      gaussian.relu_relu, w, b, chunk).compile()
  mem = compiled.memory_analysis()
  if mem is None:
    pytest.skip("no memory analysis on this backend")
  assert mem.output_size_in_bytes == r * r * 8
  assert mem.temp_size_in_bytes < 0.25 * r * r * 8, mem


def test_arccos1_vs_relu_relu_and_mc():
  rng = np.random.default_rng(6)
  x, y = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))
  k = np.asarray(gaussian.arccos1(x, y))
  nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
  rho = (x @ y.T) / np.outer(nx, ny)
  ref = np.asarray(gaussian.relu_relu(nx[:, None], 0.0, ny[None, :], 0.0, rho))
  assert_allclose(k, ref, rtol=1e-13)
  g = rng.standard_normal((400_000, 5))
  prod = np.maximum(g @ x.T, 0)[:, :, None] * np.maximum(g @ y.T, 0)[:, None, :]
  assert np.all(np.abs(k - prod.mean(0)) < 5 * prod.std(0) / np.sqrt(4e5))
  assert_allclose(np.diag(np.asarray(gaussian.arccos1(x, x))), nx**2 / 2, rtol=1e-14)


def test_jit_vmap_float64():
  f = jax.jit(jax.vmap(gaussian.relu_relu, in_axes=(None, 0, None, None, 0)))
  out = f(1.0, jnp.linspace(-2, 2, 5), 1.0, 0.0, jnp.linspace(-1, 1, 5))
  assert out.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(out)))
  # dE/dρ = σxσy Φ2(h, k; ρ) (Price's theorem), by central differences.
  e = np.asarray(gaussian.relu_relu(1.0, 0.2, 1.0, -0.1, np.array([0.3 - 1e-5, 0.3 + 1e-5])))
  assert abs((e[1] - e[0]) / 2e-5 - float(gaussian.bvn_cdf(0.2, -0.1, 0.3))) < 1e-9


@pytest.mark.slow
def test_ridge_gram_4096_speed():
  import time
  k1, k2 = jax.random.split(jax.random.key(0))
  form = _Form(jax.random.normal(k1, (10, 4096)), jax.random.normal(k2, (4096,)), "relu")
  t0 = time.time()
  g = gaussian.ridge_gram(form).block_until_ready()
  assert time.time() - t0 < 60 and bool(jnp.all(jnp.isfinite(g)))
