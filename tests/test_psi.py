"""Tests for rfjax.psi: ψ, its ReLU sum, ‖ψ‖², exact ψ-vs-ridge correlations
(docs/theory.md, 'ψ and Prop. 4.4' and 'Reference values of ψ')."""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from rfjax import gaussian, psi


class _Form(NamedTuple):
  w_dr: jax.Array
  b_r: jax.Array
  activation: str


def _np_psi(z, m):
  a = 4 * m + 1
  zc = np.clip(z, -a, a)
  return 1.0 - np.abs(np.mod(zc + 1.0, 4.0) - 2.0)


def _quad_kinks(f, R, m, extra=(), lim=None):
  """∫ f(u) du over [-lim, lim], split at every kink (2j+1)/R of ψ(Ru) and at `extra`."""
  a = (4 * m + 1) / R
  lim = lim if lim is not None else a + 12.0
  pts = set(np.arange(-(4 * m + 1), 4 * m + 2, 2) / R) | {-lim, lim}
  pts |= {p for p in extra if -lim < p < lim}
  pts = sorted(pts)
  return sum(integrate.quad(f, p0, p1, epsabs=1e-17, epsrel=1e-13, limit=200)[0]
             for p0, p1 in zip(pts[:-1], pts[1:]))


def _f_quad(beta, rho, R, m):
  """E[[V+β]_+ ψ(RU)] = ∫ ψ(Ru) E[[V+β]_+|U=u] φ(u) du with scipy (docs/theory.md,
  'ψ and Prop. 4.4')."""
  q = np.sqrt((1 - rho) * (1 + rho))
  if q == 0:
    cm = lambda u: max(rho * u + beta, 0.0)
  else:
    cm = lambda u: q * (stats.norm.pdf((rho * u + beta) / q)
                        + (rho * u + beta) / q * special.ndtr((rho * u + beta) / q))
  u0 = -beta / rho if rho != 0 else 0.0
  ex = [u0 + e * q / max(abs(rho), 1e-300) for e in (-20, -4, -1, 0, 1, 4, 20)]
  return _quad_kinks(lambda u: _np_psi(R * u, m) * cm(u) * stats.norm.pdf(u), R, m, ex)


def test_psi_shape_and_params():
  assert psi.psi_params(3) == psi.PsiParams(R=3.0, m=3, A=13)
  assert psi.psi_params(20) == psi.PsiParams(R=20.0, m=100, A=401)
  z = np.linspace(-30, 30, 6001)
  t = np.asarray(psi.triangle(z))
  assert_allclose(t, -t[::-1], atol=1e-15)                      # odd
  assert_allclose(np.asarray(psi.triangle(z + 4.0)), t, atol=1e-13)  # period 4
  assert_allclose(psi.triangle(np.array([0.0, 1.0, -1.0, 2.0])), [0, 1, -1, 0], atol=0)
  p = np.asarray(psi.psi(z, 2))
  assert np.all(p[z >= 9] == 1.0) and np.all(p[z <= -9] == -1.0)


@pytest.mark.parametrize("m", [1, 3, 25, 100])
def test_relu_decomposition_equals_psi(m):
  const, coef, off = psi.relu_decomposition(m)
  a = 4 * m + 2
  assert coef.shape == off.shape == (a,) and np.all(np.abs(coef) <= 2) and const == -1.0
  big_a = 4 * m + 1
  z = np.concatenate([np.linspace(-big_a - 5, big_a + 5, 20001), np.arange(-big_a, big_a + 1.0)])
  ref = _np_psi(z, m)
  tol = 1e-14 * a * np.abs(z).max()            # docs/theory.md, 'ψ and Prop. 4.4', P1
  assert np.abs(np.asarray(psi.psi_relu_sum(z, m)) - ref).max() <= tol
  assert np.abs(np.asarray(psi.psi(z, m)) - ref).max() <= 1e-15
  # Independent evaluation of the decomposition in numpy, sequential float64 loop.
  acc = np.full_like(z, const)
  for c, o in zip(coef, off):
    acc += c * np.maximum(z - o, 0.0)
  assert np.abs(acc - ref).max() <= tol


def test_faddeeva_vs_scipy():
  rng = np.random.default_rng(0)
  x = rng.uniform(-40, 40, 4000)
  y = np.concatenate([np.zeros(400), 10 ** rng.uniform(-10, 1.6, 3600)])
  z = x + 1j * y
  w = np.asarray(psi.faddeeva(z))
  assert np.max(np.abs(w / special.wofz(z) - 1)) < 1e-13
  # B(z) = 1/√π + i z w(z) where the subtraction is harmless (|z| < 3).
  zs = z[np.abs(z) < 3]
  b_ref = 1 / np.sqrt(np.pi) + 1j * zs * special.wofz(zs)
  assert np.max(np.abs(np.asarray(psi._bracket(jnp.asarray(zs))) / b_ref - 1)) < 1e-13


def test_relu_fourier_vs_quadrature():
  for lam, b, rho in [(1.3, 0.3, 0.6), (4.0, -1.2, -0.4), (2.5, 2.0, 0.9), (7.0, 0.0, 0.2)]:
    q = np.sqrt(1 - rho**2)
    cm = lambda u: q * gaussian.g_fn((rho * u + b) / q)
    us = np.linspace(-12, 12, 240001)
    f = np.asarray(cm(us)) * stats.norm.pdf(us)
    ref = integrate.simpson(f * np.exp(1j * lam * us), x=us)
    got = complex(psi.relu_fourier(lam, b, rho))
    assert abs(got - ref) < 1e-11


def test_psi_norm_sq():
  # docs/theory.md, 'Reference values of ψ', m = ceil(R²/4); and direct split quadrature.
  assert abs(psi.psi_norm_sq(1.0, 1) - 0.330419) < 1e-6
  assert abs(psi.psi_norm_sq(2.0, 1) - 0.340719) < 1e-6
  assert abs(psi.psi_norm_sq(3.0, 3) - 0.3333419) < 1e-7
  for R, m in [(0.5, 1), (1.0, 1), (2.0, 1), (3.0, 3), (4.0, 4)]:
    ref = _quad_kinks(lambda u: _np_psi(R * u, m) ** 2 * stats.norm.pdf(u), R, m)
    assert abs(psi.psi_norm_sq(R, m) - ref) < 1e-13


def test_linear_correlation_paper_and_quadrature():
  # docs/theory.md, 'Reference values of ψ': E[ψ(RU)U] = 9.8e-5, 3.3e-9, 4.3e-23, 3.1e-88 at
  # d = 3, 6, 10, 20.
  for d, val in [(3, 9.8e-5), (6, 3.3e-9), (10, 4.3e-23), (20, 3.1e-88)]:
    p = psi.psi_params(d)
    assert abs(psi.linear_correlation(p.R, p.m) / val - 1) < 0.02
  for d in (2, 3):
    p = psi.psi_params(d)
    ref = _quad_kinks(lambda u: _np_psi(p.R * u, p.m) * u * stats.norm.pdf(u), p.R, p.m)
    assert abs(psi.linear_correlation(p.R, p.m) - ref) < 1e-14
    got = psi.ridge_correlation(2.0, 0.7, 0.6, p.R, p.m, "linear")
    assert abs(float(got) - 2.0 * 0.6 * ref) < 1e-13


@pytest.mark.parametrize("d", [2, 3, pytest.param(4, marks=pytest.mark.slow)])
def test_ridge_correlation_vs_quadrature(d):
  p = psi.psi_params(d)
  betas = [-1.5, -0.2, 0.0, 0.3, 1.1]
  rhos = [-0.97, -0.5, 0.05, 0.4, 0.8, 0.95, 0.99, 0.9999, 1.0, -1.0]
  got = np.asarray(psi.ridge_correlation(1.0, np.array(betas)[:, None], np.array(rhos)[None, :],
                                         p.R, p.m))
  for i, bt in enumerate(betas):
    for j, r in enumerate(rhos):
      assert abs(got[i, j] - _f_quad(bt, r, p.R, p.m)) < 2e-14, (bt, r)
  # scale: E[relu(sV + b) ψ] = s F(b/s); odd in ρ.
  assert_allclose(psi.ridge_correlation(2.5, 0.75, 0.7, p.R, p.m),
                  2.5 * psi.ridge_correlation(1.0, 0.3, 0.7, p.R, p.m), rtol=1e-14)
  assert_allclose(psi.ridge_correlation(1.0, 0.3, -0.7, p.R, p.m),
                  -psi.ridge_correlation(1.0, 0.3, 0.7, p.R, p.m), rtol=1e-13)


def test_ridge_correlation_tiny_values_vs_mpmath():
  # References: ∫ ψ(Ru) E[[V+0.3]_+|U=u] φ(u) du in mpmath at 70 (d=10) / 110 (d=20) digits,
  # split at every kink of ψ(Ru) (independent of the series and the cut-off split).
  cases = [(10, 0.3, 7.02853546641e-24), (10, 0.8, -3.85381508164e-23),
           (10, 0.95, -8.08135225801e-9), (10, 0.99, -0.000110690583758),
           (20, 0.5, 7.94530697886e-89), (20, 0.9, 6.07434447056e-45),
           (20, 0.97, 2.14632644646e-17), (20, 0.98, 2.20222015035e-13),
           (20, 0.995, 1.53253207776e-7)]
  for d, rho, ref in cases:
    p = psi.psi_params(d)
    assert abs(float(psi.ridge_correlation(1.0, 0.3, rho, p.R, p.m)) / ref - 1) < 1e-10


@pytest.mark.parametrize("d", [2, 3])
def test_psi_target_cross_vs_mc(d):
  rng = np.random.default_rng(d)
  p = psi.psi_params(d)
  w_star = rng.normal(size=d)
  w_star *= p.R / np.linalg.norm(w_star)
  w_dr = rng.normal(size=(d, 5))
  w_dr[:, 0] = w_star / p.R * 1.3          # parallel feature, ρ = 1
  b_r = rng.normal(size=5)
  n = 1_000_000
  x = rng.standard_normal((n, d))
  y = _np_psi(x @ w_star, p.m)
  for act in ("relu", "linear"):
    z = x @ w_dr + b_r
    phi = np.maximum(z, 0) if act == "relu" else z
    c = np.asarray(psi.psi_target_cross(_Form(jnp.asarray(w_dr), jnp.asarray(b_r), act),
                                        w_star, p.m))
    fy = phi * y[:, None]
    assert np.all(np.abs(c - fy.mean(0)) < 5 * fy.std(0) / np.sqrt(n))


@pytest.mark.parametrize("d", [3, pytest.param(4, marks=pytest.mark.slow)])
def test_mean_abs_correlation_vs_sampled_w_star(d):
  # Average of the exact |corr| over w* ~ U(R S^{d-1}) by Monte Carlo over ρ ~ p_d.
  rng = np.random.default_rng(7)
  if True:
    p = psi.psi_params(d)
    g = rng.standard_normal((4_000, d))
    rho = g[:, 0] / np.linalg.norm(g, axis=1)
    f = np.abs(np.asarray(psi.ridge_correlation(1.0, 0.3, rho, p.R, p.m)))
    norm = np.sqrt(float(gaussian.relu_gauss_second(1.0, 0.3)))
    got = float(psi.mean_abs_correlation(1.0, 0.3, d, p.R, p.m))
    assert abs(got - f.mean() / norm) < 5 * f.std() / np.sqrt(f.size) / norm


@pytest.mark.parametrize("d,val,tol", [(3, 8e-4, 0.07), (6, 1.5e-7, 0.05),
                                       pytest.param(10, 7e-12, 0.05, marks=pytest.mark.slow),
                                       pytest.param(20, 2e-25, 0.07, marks=pytest.mark.slow)])
def test_mean_abs_correlation_paper_numbers(d, val, tol):
  # docs/theory.md, 'Reference values of ψ': 8e-4, 1.5e-7, 7e-12, 2e-25 at d = 3, 6, 10, 20
  # for h = [.+0.3]_+ -- these are
  # for the UNnormalised f (‖f‖ = 0.888); the 2.1e-25 at d = 20 is the normalised mean.
  norm = np.sqrt(float(gaussian.relu_gauss_second(1.0, 0.3)))
  p = psi.psi_params(d)
  got = float(psi.mean_abs_correlation(1.0, 0.3, d, p.R, p.m))
  assert abs(got * norm / val - 1) < tol, (d, got)
  if d == 20:
    assert abs(got / 2.1e-25 - 1) < 0.03


def test_mean_abs_correlation_linear():
  # Linear feature: E|ρ| |L| / 1 in closed form, E|ρ| = Γ(d/2)/(√π Γ((d+1)/2)).
  p = psi.psi_params(5)
  e_abs = special.gamma(2.5) / (np.sqrt(np.pi) * special.gamma(3.0))
  got = float(psi.mean_abs_correlation(1.0, 0.0, 5, p.R, p.m, "linear"))
  assert abs(got / (e_abs * abs(psi.linear_correlation(p.R, p.m))) - 1) < 1e-10


def test_jit_vmap():
  p = psi.psi_params(4)
  f = jax.jit(jax.vmap(lambda b, r: psi.ridge_correlation(1.0, b, r, p.R, p.m)))
  out = f(jnp.linspace(-1, 1, 7), jnp.linspace(-1, 1, 7))
  assert out.dtype == jnp.float64 and bool(jnp.all(jnp.isfinite(out)))


def test_bias_free_relu_is_half_the_linear_feature_at_every_d():
  """[V]_+ = V/2 + |V|/2 and |V| is even, so E[[sV]_+ ψ] = E[sV ψ]/2 exactly (‖f‖² = s²/2):
  no round-off floor may survive where the true correlation is 1e-89."""
  for d in (3, 12, 20):
    p = psi.psi_params(d)
    relu = float(psi.mean_abs_correlation(1.0, 0.0, d, p.R, p.m, "relu"))
    lin = float(psi.mean_abs_correlation(1.0, 0.0, d, p.R, p.m, "linear"))
    np.testing.assert_allclose(relu, lin / np.sqrt(2.0), rtol=1e-6)
    for rho in (0.5, 0.999, 0.99999):
      np.testing.assert_allclose(float(psi.ridge_correlation(1.0, 0.0, rho, p.R, p.m)),
                                 rho * psi.linear_correlation(p.R, p.m) / 2, rtol=1e-9)
