"""Legendre construction of Thm 3.4 against scipy, closed forms, tensor quadrature and MC."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from rfjax import activations
from rfjax import legendre


def _tensor_grid(d, nodes):
  t, w = np.polynomial.legendre.leggauss(nodes)
  v = np.array(list(itertools.product(t, repeat=d)))
  wt = np.prod(np.array(list(itertools.product(w / 2, repeat=d))), axis=1)
  return v, wt


def test_table_matches_scipy_and_bounds():
  t = np.linspace(-1, 1, 201)
  tab = np.asarray(legendre.legendre_table(jnp.asarray(t), 12))
  for n in range(13):
    np.testing.assert_allclose(tab[:, n], special.eval_legendre(n, t), atol=1e-13)
  assert np.all(np.abs(tab) <= 1 + 1e-13) and np.allclose(tab[-1], 1.0)


def test_coefficients_match_numpy():
  c = legendre.legendre_coefficients(10)
  for j in range(11):
    ref = np.polynomial.legendre.leg2poly(np.eye(11)[j])
    np.testing.assert_allclose(c[j, :len(ref)], ref, atol=1e-12)
  # Σ_t |coef(P_j)| ≤ (1+√2)^j, used by the bound (docs/theory.md,
  # 'Integral representation (Thm 3.4)')
  assert np.all(np.abs(c).sum(1) <= (1 + math.sqrt(2)) ** np.arange(11) + 1e-9)


def test_orthogonality_and_moments():
  t, w = np.polynomial.legendre.leggauss(40)
  tab = np.asarray(legendre.legendre_table(jnp.asarray(t), 10))
  gram = (tab * (w / 2)[:, None]).T @ tab
  np.testing.assert_allclose(gram, np.diag(1 / (2 * np.arange(11) + 1)), atol=1e-14)
  mu = legendre.moment_table(12, 10)
  quad = ((t[:, None] ** np.arange(13)) * (w / 2)[:, None]).T @ tab
  np.testing.assert_allclose(mu, quad, atol=1e-14)
  for m in range(11):   # t^m = Σ (2n+1) μ_{m,n} P_n
    np.testing.assert_allclose(tab @ ((2 * np.arange(11) + 1) * mu[m]), t**m, atol=1e-12)
  assert mu[5, 5] == pytest.approx(2**5 * math.factorial(5) ** 2 / math.factorial(11))


def test_cube_moments():
  d = 3
  v, wt = _tensor_grid(d, 6)
  w = v / math.sqrt(d)
  for j in [(0, 0, 0), (2, 0, 0), (2, 2, 0), (4, 2, 2), (1, 2, 0), (3, 3, 0)]:
    assert legendre.cube_moment(j) == pytest.approx(np.sum(wt * np.prod(w**np.array(j), 1)),
                                                    abs=1e-15)


def test_multi_indices():
  for d, k in [(1, 3), (3, 2), (8, 3)]:
    j = legendre.multi_indices(d, k)
    assert len(j) == math.comb(d + k, k) == len({tuple(r) for r in j})
    assert j.sum(1).max() == k and np.all(np.diff(j.sum(1)) >= 0)


def _random_poly(rng, sigma, d, k):
  cons = legendre.prepare(sigma, d, k, K=max(k, 3))
  alpha = rng.uniform(-1, 1, len(cons.i_sd))
  return {tuple(int(x) for x in i): float(a) for i, a in zip(cons.i_sd, alpha)}


@pytest.mark.parametrize("sigma,d", [("poly3", 2), ("poly3", 3), ("exp", 2), ("exp", 3),
                                     ("sincos", 3)])
def test_integral_against_tensor_quadrature(sigma, d):
  """E_v[σ(<v,x>/√d) ĝ(v)] exact (moment / separable) vs tensor Gauss–Legendre in v."""
  rng = np.random.default_rng(0)
  poly = _random_poly(rng, sigma, d, 2)
  cons, b = legendre.construct(poly, sigma, d, K=None if sigma == "poly3" else 5)
  v, wt = _tensor_grid(d, 24)
  x = rng.normal(size=(7, d))
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  gv = np.asarray(legendre.g_hat(cons.j_td, jnp.asarray(b), jnp.asarray(v)))
  act = activations.get(sigma)
  quad = np.array([np.sum(wt * gv * np.asarray(act.fn(jnp.asarray(v @ xi / math.sqrt(d)))))
                   for xi in x])
  exact = np.asarray(legendre.integral(sigma, cons.j_td, jnp.asarray(b), jnp.asarray(x)))
  np.testing.assert_allclose(exact, quad, atol=1e-11 * max(1.0, np.abs(b).sum()))


def test_g_has_prescribed_moments():
  """E[v^I ĝ] = α_I I! d^{|I|/2} / (a_|I| |I|!) for |I| ≤ k and 0 up to K (tensor quadrature)."""
  d, K = 2, 4
  poly = {(1, 0): 0.3, (1, 1): -0.7, (0, 2): 0.5, (0, 0): 0.2}
  cons, b = legendre.construct(poly, "exp", d, K=K)
  v, wt = _tensor_grid(d, 12)
  gv = np.asarray(legendre.g_hat(cons.j_td, jnp.asarray(b), jnp.asarray(v)))
  a = activations.get("exp").taylor(K)
  for i in legendre.multi_indices(d, K):
    s = int(i.sum())
    want = poly.get(tuple(int(x) for x in i), 0.0) * d ** (s / 2) / (a[s] * legendre.multinomial(i[None])[0])
    assert np.sum(wt * gv * np.prod(v**i, 1)) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("d", [4, 6])
def test_polynomial_sigma_reproduces_p_exactly(d):
  rng = np.random.default_rng(d)
  poly = _random_poly(rng, "poly3", d, 3)
  cons, b = legendre.construct(poly, "poly3", d)
  x = rng.uniform(-1, 1, size=(50, d)) / math.sqrt(d)
  p = sum(c * np.prod(x ** np.array(i), 1) for i, c in poly.items())
  got = np.asarray(legendre.integral("poly3", cons.j_td, jnp.asarray(b), jnp.asarray(x)))
  np.testing.assert_allclose(got, p, atol=1e-12)


def test_integral_against_monte_carlo_d6():
  d = 6
  poly = {(1, 0, 0, 0, 0, 0): 0.5, (0, 1, 0, 0, 1, 0): -0.4, (0, 0, 0, 0, 0, 0): 0.1}
  cons, b = legendre.construct(poly, "exp", d, K=4)
  key = jax.random.key(0)
  v = jax.random.uniform(key, (200_000, d), jnp.float64, -1.0, 1.0)
  gv = legendre.g_hat(cons.j_td, jnp.asarray(b), v)
  x = jnp.asarray(np.eye(d)[:3] * 0.9)
  vals = jnp.exp(v @ x.T / math.sqrt(d)) * gv[:, None]
  mc, se = vals.mean(0), vals.std(0) / math.sqrt(v.shape[0])
  exact = legendre.integral("exp", cons.j_td, jnp.asarray(b), x)
  assert np.all(np.abs(np.asarray(mc - exact)) < 5 * np.asarray(se))


def test_sup_estimate_between_sample_and_bounds():
  d, k = 3, 2
  poly = {(1, 1, 0): 1.0, (0, 0, 2): -1.0, (1, 0, 0): 0.5}
  cons, b = legendre.construct(poly, "poly3", d)
  b = jnp.asarray(b)
  sup = float(legendre.sup_g_estimate(jax.random.key(1), cons.j_td, b, num=4096, chunk=512))
  v, _ = _tensor_grid(d, 30)                          # a dense grid as a second estimate
  grid_sup = float(np.abs(np.asarray(legendre.g_hat(cons.j_td, b, jnp.asarray(v)))).max())
  assert sup >= grid_sup * (1 - 1e-3)
  assert sup <= float(legendre.abs_coefficient_sum(b)) + 1e-9
  assert float(legendre.g_l2(cons.j_td, b)) <= grid_sup
  # at K = k (ĝ of the degree of P) the triangle inequality gives Σ|b_J| ≤ C_P(k)
  cons_k, b_k = legendre.construct(poly, "exp", d, K=k)
  assert cons_k.a_k == 2.0
  assert float(np.abs(b_k).sum()) <= legendre.bound_g(1.0, cons_k.a_k, d, k)


def test_bound_forms_and_l2_norm():
  # C_P(k) = α A_k (3(1+√2))^k × C(d+k, k) or (d+1)^k × d^{k/2}
  assert legendre.bound_g(0.5, 6.0, 8, 3) == pytest.approx(
      0.5 * 6 * (3 + 3 * math.sqrt(2))**3 * 165 * 8**1.5, rel=1e-14)
  assert legendre.bound_g(0.5, 6.0, 8, 3, "power") == pytest.approx(
      0.5 * 6 * (3 + 3 * math.sqrt(2))**3 * 9**3 * 8**1.5, rel=1e-14)
  with pytest.raises(ValueError, match="bound form"):
    legendre.bound_g(1.0, 1.0, 2, 1, "K")
  # ‖ĝ‖₂ by orthogonality against tensor Gauss–Legendre quadrature (exact for degree ≤ 2·6)
  d = 3
  cons, b = legendre.construct({(1, 1, 0): 1.0, (0, 0, 2): -0.7, (0, 0, 0): 0.2}, "exp", d, K=5)
  v, w = _tensor_grid(d, 8)
  gv = np.asarray(legendre.g_hat(cons.j_td, jnp.asarray(b), jnp.asarray(v)))
  np.testing.assert_allclose(float(legendre.g_l2(cons.j_td, jnp.asarray(b))),
                             math.sqrt(np.sum(w * gv**2)), rtol=1e-12)


def test_truncation_residual_bound():
  """The certified bound sits above the residual measured on many points of the sphere, and
  is 0 for a polynomial σ truncated at its own degree."""
  assert legendre.remainder_derivative_bound("exp", 4) == pytest.approx(math.e)
  assert legendre.remainder_derivative_bound("sincos", 4) == pytest.approx(math.sqrt(2))
  assert legendre.remainder_derivative_bound("poly3", 3) == 0.0
  assert legendre.remainder_derivative_bound("poly3", 1) == pytest.approx(2.0)   # σ'' = 1 + z
  assert legendre.truncation_residual_factor("poly3", 4, 3) == 0.0
  x = np.random.default_rng(0).normal(size=(4000, 3))
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  for sigma in ("exp", "sincos"):
    for K in (2, 3, 5):
      poly = {(1, 0, 0): 0.4, (0, 1, 1): -0.3, (0, 0, 0): 0.3}
      cons, b = legendre.construct(poly, sigma, 3, K=K)
      fx = np.asarray(legendre.integral(sigma, cons.j_td, jnp.asarray(b), jnp.asarray(x)))
      px = 0.4 * x[:, 0] - 0.3 * x[:, 1] * x[:, 2] + 0.3
      bound = float(legendre.g_l2(cons.j_td, jnp.asarray(b))) * \
          legendre.truncation_residual_factor(sigma, 3, K)
      assert 0 < np.abs(fx - px).max() <= bound


def test_unsupported_monomial_and_non_polynomial_errors():
  with pytest.raises(ValueError, match="not supported"):
    legendre.construct({(2, 0): 1.0}, "tanh", 2, K=3)          # tanh has a_2 = 0
  with pytest.raises(ValueError, match="truncation degree"):
    legendre.construct({(1, 0): 1.0}, "exp", 2)
  with pytest.raises(ValueError, match="not analytic"):
    legendre.prepare("relu", 2, 1, K=2)
