"""Feature maps: generic checks over every registered name, kernels against Monte Carlo and
independent quadrature, ridge forms, per-family definitions, and registering from outside."""
from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy import stats

from rfjax import distributions
from rfjax import features
from rfjax import gaussian
from rfjax import registry
from rfjax import testing

BUILTIN = ["coupling", "deep_net", "kernel_points", "linear_sphere", "relu_biased", "relu_cube",
           "relu_gauss", "relu_sphere", "rff", "tanh_cube"]
RIDGE = ["linear_sphere", "relu_biased", "relu_cube", "relu_gauss", "relu_sphere"]
WITH_KERNEL = ["kernel_points", "linear_sphere", "relu_gauss", "relu_sphere", "rff"]

D, R_SMALL = 3, 7  # r not a multiple of d, so coupling's last neuron is partly used


def _x(n: int = 4, d: int = D, seed: int = 1) -> jax.Array:
  """x_nd: a few float64 test points of moderate norm."""
  return jax.random.normal(jax.random.key(seed), (n, d), dtype=jnp.float64)


# ----------------------------------------------------------------------------------------------
# Generic checks: rfjax.testing.check_feature_map, one check per test.


def test_builtin_names_registered():
  assert set(BUILTIN) <= set(features.names())
  assert features.names() == features.FEATURE_MAPS.names()
  for name in BUILTIN:
    fm = features.get(name)
    assert isinstance(fm, features.FeatureMap) and fm.description
  assert sorted(n for n in BUILTIN if features.get(n).ridge is not None) == RIDGE
  assert sorted(n for n in BUILTIN if features.get(n).kernel is not None) == WITH_KERNEL


def test_unknown_name_lists_known():
  with pytest.raises(KeyError, match="unknown feature map 'nope'.*relu_sphere"):
    features.get("nope")


@pytest.mark.parametrize("name", features.names())
@pytest.mark.parametrize("check", list(testing.CHECKS))
def test_conformance(name, check):
  testing.check_feature_map(name, d=D, r=R_SMALL, checks=[check])


@pytest.mark.parametrize("name", BUILTIN)
def test_dtypes(name):
  fm = features.get(name)
  p64 = fm.init(jax.random.key(0), D, R_SMALL)  # x64 is on in tests: default float64
  assert all(a.dtype == jnp.float64 for a in jax.tree.leaves(p64))
  p32 = fm.init(jax.random.key(0), D, R_SMALL, dtype=jnp.float32)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(p32))
  x32 = _x().astype(jnp.float32)
  assert fm.apply(p32, x32).dtype == jnp.float32
  p32_as64 = jax.tree.map(lambda a: a.astype(jnp.float64), p32)
  np.testing.assert_allclose(fm.apply(p32, x32), fm.apply(p32_as64, x32.astype(jnp.float64)),
                             rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Kernels against independent closed forms / quadrature.


def _relu_gauss_quad(x: np.ndarray, y: np.ndarray) -> float:
  """E_g[<g,x>]_+[<g,y>]_+ by 1-D quadrature of the conditional mean (docs/theory.md,
  'Exact Gaussian moments', b = 0)."""
  a, b = np.linalg.norm(x), np.linalg.norm(y)
  rho = float(np.clip(x @ y / (a * b), -1, 1))
  q = math.sqrt(1 - rho * rho)
  if q < 1e-12:
    return a * b / 2 if rho > 0 else 0.0
  pdf = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
  cdf = lambda t: 0.5 * math.erfc(-t / math.sqrt(2))
  # E[[V]_+ | U = u] = q phi(rho u / q) + rho u Phi(rho u / q); integrate u_+ times it.
  cond = lambda u: q * pdf(rho * u / q) + rho * u * cdf(rho * u / q)
  val, _ = integrate.quad(lambda u: u * pdf(u) * cond(u), 0, np.inf, epsabs=1e-14, epsrel=1e-12)
  return a * b * val


def test_relu_gauss_kernel_vs_quadrature():
  x = np.asarray(_x(4, 5))
  y = np.concatenate([x, -x[:1], 2.0 * x[1:2], np.asarray(_x(2, 5, seed=7))])
  k = np.asarray(features.get("relu_gauss").kernel(x, y))
  want = np.array([[_relu_gauss_quad(xi, yj) for yj in y] for xi in x])
  np.testing.assert_allclose(k, want, rtol=1e-10, atol=1e-13)
  # docs/theory.md, 'Exact Gaussian moments': E[<w,x>]_+^2 = |x|^2 / 2.
  np.testing.assert_allclose(np.diag(k[:, :4]), (x * x).sum(1) / 2, rtol=1e-13)


def test_arccos_kernel_zero_vector():
  x = jnp.zeros((1, 3))
  k = features.get("relu_gauss").kernel(x, _x(2))
  np.testing.assert_array_equal(k, np.zeros((1, 2)))


def test_relu_gauss_kernel_is_the_relu_cross_moment():
  """arccos1(x, y) = E[<g,x>_+ <g,y>_+] = relu_relu(|x|, 0, |y|, 0, cos) (bivariate normal)."""
  x, y = np.asarray(_x(4, 5)), np.asarray(_x(3, 5, seed=3))
  nx, ny = np.linalg.norm(x, axis=1)[:, None], np.linalg.norm(y, axis=1)[None, :]
  want = gaussian.relu_relu(nx, 0.0, ny, 0.0, (x @ y.T) / (nx * ny))
  np.testing.assert_allclose(features.get("relu_gauss").kernel(x, y), want, rtol=1e-12,
                             atol=1e-14)


def test_relu_sphere_kernel_vs_disk_quadrature():
  """At d = 4 the projection of U(S^3) on a 2-plane is uniform on the unit disk."""
  d = 4
  x = np.asarray(_x(3, d))
  k = np.asarray(features.get("relu_sphere").kernel(x, x))
  for i in range(3):
    for j in range(3):
      a, b = np.linalg.norm(x[i]), np.linalg.norm(x[j])
      theta = math.acos(float(np.clip(x[i] @ x[j] / (a * b), -1, 1)))
      # E = (1/pi) int_0^1 t^3 dt int (a cos p)_+ (b cos(p - theta))_+ dp.
      f = lambda p: max(math.cos(p), 0.0) * max(math.cos(p - theta), 0.0)
      ang, _ = integrate.quad(f, -math.pi, math.pi, points=[-math.pi / 2, math.pi / 2,
                                                            theta - math.pi / 2],
                              epsabs=1e-14, epsrel=1e-12, limit=200)
      np.testing.assert_allclose(k[i, j], a * b * ang / (4 * math.pi), rtol=1e-9)


def test_linear_sphere_kernel():
  x, y = np.asarray(_x(4)), np.asarray(_x(3, seed=9))
  np.testing.assert_allclose(features.get("linear_sphere").kernel(x, y), x @ y.T / D,
                             rtol=1e-13)


def test_kernel_points_kernel_vs_gauss_hermite():
  """E_z k(z,x) k(z,y) is a product over coordinates of 1-D Gaussian integrals."""
  z, w = np.polynomial.hermite_e.hermegauss(80)
  w = w / math.sqrt(2 * math.pi)
  for d in (1, 3, 6):
    x, y = np.asarray(_x(3, d)), np.asarray(_x(4, d, seed=4))
    want = np.ones((3, 4))
    for j in range(d):
      g_xz = np.exp(-(x[:, j, None] - z[None, :]) ** 2 / (2 * d))
      g_yz = np.exp(-(y[:, j, None] - z[None, :]) ** 2 / (2 * d))
      want *= (g_xz * w[None, :]) @ g_yz.T
    np.testing.assert_allclose(features.get("kernel_points").kernel(x, y), want, rtol=1e-11)


def test_rff_kernel_vs_quadrature():
  """E over (u, v) = (<w,x>, <w,y>) ~ N(0, Sigma/d) by 2-D Gauss-Hermite, b on an exact grid."""
  z, w = np.polynomial.hermite_e.hermegauss(60)
  w = w / math.sqrt(2 * math.pi)
  b = 2 * math.pi * np.arange(16) / 16  # exact for trigonometric polynomials of degree < 16
  x = np.asarray(_x(3))
  k = np.asarray(features.get("rff").kernel(x, x))
  for i in range(3):
    for j in range(3):
      xy = np.stack([x[i], x[j]])
      evals, evecs = np.linalg.eigh(xy @ xy.T / D)
      root = evecs * np.sqrt(np.maximum(evals, 0))[None, :]
      uv = np.einsum("ab,pqb->pqa", root, np.stack(np.meshgrid(z, z, indexing="ij"), -1))
      cc = np.cos(uv[..., 0, None] + b) * np.cos(uv[..., 1, None] + b)
      want = np.einsum("p,q,pqb->", w, w, cc) / len(b)
      np.testing.assert_allclose(k[i, j], want, rtol=1e-11)


# ----------------------------------------------------------------------------------------------
# Per-family definitions.


def test_sphere_and_cube_weights():
  d, r = D, R_SMALL
  for name in ("relu_sphere", "relu_biased", "linear_sphere"):
    w = np.asarray(features.get(name).ridge(features.get(name).init(jax.random.key(0), d, r)).w_dr)
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), 1.0, rtol=1e-13)
  for name in ("relu_cube", "tanh_cube"):
    params = features.get(name).init(jax.random.key(0), d, r)
    assert np.all(np.abs(params["w_dr"]) <= 1 / math.sqrt(d))
    np.testing.assert_array_equal(params["b_r"], 0)
  b = features.get("relu_biased").init(jax.random.key(0), d, 2000)["b_r"]
  assert stats.kstest(np.asarray(b), "norm").pvalue > 1e-3


def test_tanh_cube_apply():
  fm = features.get("tanh_cube")
  params = fm.init(jax.random.key(0), D, R_SMALL)
  x = np.asarray(_x())
  np.testing.assert_allclose(fm.apply(params, x), np.tanh(x @ np.asarray(params["w_dr"])),
                             rtol=1e-13)


def test_deep_net_structure_and_forward():
  fm = features.get("deep_net")
  d, r = D, R_SMALL
  params = fm.init(jax.random.key(0), d, r)
  p = params["params"]
  w1, w2 = (np.asarray(p[k]["kernel"]) for k in ("w1", "w2"))
  b1, b2 = (np.asarray(p[k]["bias"]) for k in ("w1", "w2"))
  chex.assert_shape([w1, b1, w2, b2], [(d, 64), (64,), (64, r), (r,)])
  np.testing.assert_allclose(np.linalg.norm(w1, axis=0), 1.0, rtol=1e-13)  # rows of W1
  big = np.asarray(fm.init(jax.random.key(1), d, 4096)["params"]["w2"]["kernel"])
  assert abs(big.var() * 64 / 2 - 1) < 0.1               # He-normal: variance 2 / fan_in
  assert abs(np.asarray(fm.init(jax.random.key(1), d, 4096)["params"]["w2"]["bias"]).std()
             - 1) < 0.05
  x = np.asarray(_x(4, d))
  relu = lambda z: np.maximum(z, 0)
  np.testing.assert_allclose(fm.apply(params, x), relu(relu(x @ w1 + b1) @ w2 + b2), rtol=1e-11,
                             atol=1e-13)


def test_deep_net_features_are_not_rank_limited():
  """r > width units of the last hidden layer span r dimensions (a linear read-out of the
  width-64 layer would span at most 64)."""
  fm = features.get("deep_net")
  params = fm.init(jax.random.key(2), 3, 128)
  phi = np.asarray(fm.apply(params, jax.random.normal(jax.random.key(3), (4096, 3))))
  sv = np.linalg.svd(phi - phi.mean(0), compute_uv=False)
  assert np.sum(sv > 1e-8 * sv[0]) > 64


def test_coupling_definition():
  fm = features.get("coupling")
  d, r = D, R_SMALL  # r = 2 d + 1: the last neuron carries one feature
  params = fm.init(jax.random.key(0), d, r)
  w = np.asarray(params["w_dr"])
  assert np.all(np.abs(w) <= 1 / math.sqrt(d))
  assert len(np.unique(w, axis=1)) == math.ceil(r / d)
  x = np.asarray(_x(4, d))
  want = np.zeros((4, r))
  for i in range(r):
    k, j = i // d, i % d
    w_k = w[:, k * d]  # neuron k's column, repeated for its d features
    want[:, i] = (x @ w_k >= 0) * x[:, j]
  np.testing.assert_array_equal(fm.apply(params, x), want)


def test_kernel_points_apply():
  fm = features.get("kernel_points")
  params = fm.init(jax.random.key(0), D, R_SMALL)
  p, x = np.asarray(params["points_rd"]), np.asarray(_x())
  want = np.exp(-((x[:, None, :] - p[None, :, :]) ** 2).sum(-1) / (2 * D))
  np.testing.assert_allclose(fm.apply(params, x), want, rtol=1e-12)
  np.testing.assert_allclose(fm.apply(params, p), np.exp(-((p[:, None] - p[None]) ** 2).sum(-1)
                                                          / (2 * D)), rtol=1e-12)


def test_rff_apply():
  fm = features.get("rff")
  params = fm.init(jax.random.key(0), D, R_SMALL)
  w, b = np.asarray(params["w_dr"]), np.asarray(params["b_r"])
  assert np.all((b >= 0) & (b <= 2 * math.pi))
  x = np.asarray(_x())
  np.testing.assert_allclose(fm.apply(params, x), np.cos(x @ w + b[None, :]), rtol=1e-12,
                             atol=1e-13)


# ----------------------------------------------------------------------------------------------
# Extension from outside the package.


def _quad_init(key: jax.Array, d: int, r: int) -> dict:
  """{"w_dr": r unit vectors} via the package's sphere sampler."""
  d, r = features.check_dims(d, r)
  return {"w_dr": distributions.sphere(key, r, d, dtype=jnp.float64).T}


def _quad_apply(params: dict, x_nd: jax.Array) -> jax.Array:
  """phi_nr = <w_i, x>^2."""
  return jnp.square(jnp.matmul(x_nd, params["w_dr"], precision="highest"))


def _quad_kernel(x_nd: jax.Array, y_md: jax.Array) -> jax.Array:
  """E <w,x>^2 <w,y>^2 = (|x|^2 |y|^2 + 2 <x,y>^2) / (d (d + 2)) for w ~ U(S^{d-1})."""
  d = x_nd.shape[1]
  xx_n1 = jnp.sum(x_nd**2, axis=1, keepdims=True)
  yy_1m = jnp.sum(y_md**2, axis=1, keepdims=True).T
  dot_nm = x_nd @ y_md.T
  return (xx_n1 * yy_1m + 2 * dot_nm**2) / (d * (d + 2))


def test_register_from_outside():
  name = "test_quadratic_sphere"
  fm = features.FeatureMap(_quad_init, _quad_apply, _quad_kernel,
                           description="<w,x>^2, w on the unit sphere (test only)")
  assert name not in features.names()
  features.register(name, fm)
  try:
    assert features.get(name) is fm and name in features.names()
    testing.check_feature_map(name, d=D, r=R_SMALL)
  finally:
    features.FEATURE_MAPS.unregister(name)
  assert name not in features.names()
  with pytest.raises(KeyError):
    features.get(name)


def test_reregistration_replaces_with_warning_and_bad_registration_refused():
  old = features.get("relu_sphere")
  try:
    with pytest.warns(registry.RegistryWarning, match="'relu_sphere' was already registered"):
      features.register("relu_sphere", features.get("relu_gauss"))
    assert features.get("relu_sphere").kernel is features.get("relu_gauss").kernel
  finally:
    features.FEATURE_MAPS._items["relu_sphere"] = old       # restore without a warning
  assert features.get("relu_sphere") is old
  with pytest.raises(TypeError, match="must be a FeatureMap"):
    features.register("not_a_map", (_quad_init, _quad_apply))
  assert "not_a_map" not in features.names()
