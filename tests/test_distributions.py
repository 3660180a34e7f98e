"""Samplers against exact norms, known moments and the ball's radius law."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rfjax import distributions

N, D = 20_000, 5


def _draw(name: str, seed: int = 0, n: int = N, d: int = D, **kw) -> np.ndarray:
  """float64 numpy sample from the named sampler."""
  fn = distributions.SAMPLERS.get(name)
  return np.asarray(fn(jax.random.key(seed), n, d, dtype=jnp.float64, **kw))


def test_registered():
  assert distributions.SAMPLERS.names() == ["ball", "cube", "gaussian", "sphere"]
  assert distributions.SAMPLERS.get("sphere") is distributions.sphere


@pytest.mark.parametrize("name", distributions.SAMPLERS.names())
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shape_and_dtype_honoured(name, dtype):
  x = distributions.SAMPLERS.get(name)(jax.random.key(0), 7, 3, dtype=dtype)
  chex.assert_shape(x, (7, 3))
  assert x.dtype == dtype
  assert np.all(np.isfinite(np.asarray(x)))


@pytest.mark.parametrize("name", distributions.SAMPLERS.names())
def test_default_dtype_is_float32(name):
  assert distributions.SAMPLERS.get(name)(jax.random.key(0), 2, 3).dtype == jnp.float32


@pytest.mark.parametrize("name", distributions.SAMPLERS.names())
def test_keys_determine_samples(name):
  fn = distributions.SAMPLERS.get(name)
  a = fn(jax.random.key(3), 5, 4)
  np.testing.assert_array_equal(a, fn(jax.random.key(3), 5, 4))
  assert not np.array_equal(a, fn(jax.random.key(4), 5, 4))
  # jit may fuse the normalisation differently: equal to float32 rounding.
  b = jax.jit(fn, static_argnums=(1, 2))(jax.random.key(3), 5, 4)
  np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", distributions.SAMPLERS.names())
@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3"])
def test_bad_sizes_rejected(name, bad):
  fn = distributions.SAMPLERS.get(name)
  with pytest.raises(ValueError, match="n must be a positive integer"):
    fn(jax.random.key(0), bad, 3)
  with pytest.raises(ValueError, match="d must be a positive integer"):
    fn(jax.random.key(0), 3, bad)


@pytest.mark.parametrize("name,kw", [("cube", {"a": 0.0}), ("sphere", {"radius": -1.0}),
                                     ("ball", {"radius": float("inf")})])
def test_bad_scale_rejected(name, kw):
  with pytest.raises(ValueError, match="finite number > 0"):
    distributions.SAMPLERS.get(name)(jax.random.key(0), 3, 3, **kw)


def _assert_moments(x_nd: np.ndarray, mean_d: np.ndarray, cov_dd: np.ndarray, z: float = 5.0):
  """Sample mean and covariance within z standard errors (4th moments estimated) of the truth."""
  n = x_nd.shape[0]
  se_mean = x_nd.std(axis=0) / np.sqrt(n)
  np.testing.assert_array_less(np.abs(x_nd.mean(axis=0) - mean_d), z * se_mean)
  c_ndd = (x_nd - mean_d)[:, :, None] * (x_nd - mean_d)[:, None, :]
  se_cov = c_ndd.std(axis=0) / np.sqrt(n)
  np.testing.assert_array_less(np.abs(c_ndd.mean(axis=0) - cov_dd), z * se_cov)


def test_gaussian_moments():
  x = _draw("gaussian")
  _assert_moments(x, np.zeros(D), np.eye(D))
  # Squared norms are chi-square with d degrees of freedom.
  assert stats.kstest((x * x).sum(axis=1), stats.chi2(D).cdf).pvalue > 1e-3


@pytest.mark.parametrize("a", [1.0, 0.3])
def test_cube_support_and_moments(a):
  x = _draw("cube", a=a)
  assert np.all(np.abs(x) <= a)
  _assert_moments(x, np.zeros(D), np.eye(D) * a * a / 3)
  assert stats.kstest(x[:, 0], stats.uniform(-a, 2 * a).cdf).pvalue > 1e-3


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_sphere_radius_exact_and_isotropic(radius):
  x = _draw("sphere", radius=radius)
  np.testing.assert_allclose(np.linalg.norm(x, axis=1), radius, rtol=1e-13)
  _assert_moments(x, np.zeros(D), np.eye(D) * radius**2 / D)
  # A coordinate of a uniform unit vector: (x_1 + 1)/2 ~ Beta((d-1)/2, (d-1)/2).
  b = stats.beta((D - 1) / 2, (D - 1) / 2)
  assert stats.kstest((x[:, 0] / radius + 1) / 2, b.cdf).pvalue > 1e-3


def test_sphere_float32_radius():
  x = distributions.sphere(jax.random.key(0), 100, 7, radius=3.0)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(x, np.float64), axis=1), 3.0, rtol=1e-6)


@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("radius", [1.0, 0.5])
def test_ball_radius_law(d, radius):
  x = _draw("ball", d=d, radius=radius)
  t = np.linalg.norm(x, axis=1) / radius
  assert np.all(t <= 1 + 1e-12)
  # P(|x| <= t R) = t^d.
  assert stats.kstest(t, lambda s: np.clip(s, 0, 1) ** d).pvalue > 1e-3
  _assert_moments(x, np.zeros(d), np.eye(d) * radius**2 / (d + 2))


def test_ball_directions_independent_of_radius():
  x = _draw("ball", d=3)
  u = x / np.linalg.norm(x, axis=1, keepdims=True)
  _assert_moments(u, np.zeros(3), np.eye(3) / 3)
  # Correlation of |x| with a direction coordinate squared should vanish.
  rho, p = stats.pearsonr(np.linalg.norm(x, axis=1), u[:, 0] ** 2)
  assert p > 1e-3, rho
