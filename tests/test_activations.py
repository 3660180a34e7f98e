"""Activations: Taylor series against the functions, Lipschitz constants, clear errors."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import activations
from rfjax import validation


@pytest.mark.parametrize("name", activations.analytic_names())
def test_taylor_series_reproduces_fn(name):
  act = activations.get(name)
  z = np.linspace(-1.0, 1.0, 41)
  a = activations.taylor_or_raise(act, 80)
  series = np.polynomial.polynomial.polyval(z, a)
  np.testing.assert_allclose(series, np.asarray(act.fn(jnp.asarray(z))), atol=1e-12)


@pytest.mark.parametrize("name", activations.names())
def test_lipschitz_and_sigma0(name):
  act = activations.get(name)
  if act.lipschitz == math.inf:            # declared not Lipschitz (step): σ' = 0 a.e.
    assert act.sigma0 == pytest.approx(abs(float(act.fn(jnp.zeros(())))), abs=1e-15)
    return
  assert act.lipschitz == pytest.approx(activations.lipschitz_on(act, 2.0), rel=1e-6)
  assert act.sigma0 == pytest.approx(abs(float(act.fn(jnp.zeros(())))), abs=1e-15)
  assert act.sigma0 <= act.lipschitz


@pytest.mark.parametrize("name", activations.names())
def test_dtype_preserved(name):
  for dtype in (jnp.float32, jnp.float64):
    assert activations.get(name).fn(jnp.linspace(-1, 1, 5, dtype=dtype)).dtype == dtype


def test_known_coefficients():
  np.testing.assert_allclose(activations.get("sincos").taylor(5),
                             [1, 1, -1 / 2, -1 / 6, 1 / 24, 1 / 120])
  # tanh z = z − z³/3 + 2z⁵/15 − 17z⁷/315
  np.testing.assert_allclose(activations.get("tanh").taylor(7),
                             [0, 1, 0, -1 / 3, 0, 2 / 15, 0, -17 / 315], atol=1e-15)
  assert activations.supported_degrees(activations.get("tanh"), 5) == [1, 3, 5]


def test_coefficient_condition_sincos():
  act = activations.get("sincos")
  for k in (1, 2, 3, 5):
    zeta = activations.coefficient_zeta(act, k)
    assert zeta == pytest.approx(math.factorial(k) ** (-1.0 / k))
    a = act.taylor(k)
    assert all(abs(a[n]) >= zeta**n * (1 - 1e-12) for n in range(k + 1))
    assert activations.coefficient_constant(act, k) == pytest.approx(math.factorial(k))


def test_polynomial():
  act = activations.polynomial([2.0, 0.0, -3.0, 0.0, 0.0])
  assert act.degree == 2 and act.sigma0 == 2.0
  assert act.lipschitz == pytest.approx(12.0)
  np.testing.assert_allclose(act.taylor(4), [2, 0, -3, 0, 0])
  z = jnp.linspace(-2, 2, 9)
  np.testing.assert_allclose(act.fn(z), 2 - 3 * z**2, atol=1e-14)
  poly3 = activations.get("poly3")
  assert poly3.degree == 3 and all(poly3.taylor(3) != 0)


def test_require_analytic_errors():
  with pytest.raises(validation.ConfigError, match="sigma.*not analytic"):
    activations.require_analytic("relu")
  with pytest.raises(validation.ConfigError, match="act: unknown activation"):
    activations.require_analytic("nope", field="act")
  assert activations.require_analytic("exp").name == "exp"
  with pytest.raises(ValueError, match="not analytic"):
    activations.taylor_or_raise(activations.get("relu"), 3)
