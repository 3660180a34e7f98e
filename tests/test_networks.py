"""networks: shapes, Xavier cube init, U_0 norm, forward pass against numpy, linearisation."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import networks


def test_forward_matches_numpy_and_init_ranges():
  net = networks.make(r=64, activation="sincos", u0_norm=1.0)
  params = networks.init(net, jax.random.key(0), 5)
  w, u = (np.asarray(params["params"][k], np.float64) for k in ("w", "u"))
  chex.assert_shape(w, (64, 5))
  chex.assert_shape(u, (64,))
  assert params["params"]["w"].dtype == jnp.float32
  assert np.all(np.abs(w) <= 1 / math.sqrt(5)) and np.all(np.linalg.norm(w, axis=1) <= 1)
  np.testing.assert_allclose(np.linalg.norm(u), 1 / math.sqrt(64), rtol=1e-5)
  # uniform on the cube: mean 0, variance a^2/3 with a = 1/sqrt(d)
  np.testing.assert_allclose(np.var(w), 1 / 15, rtol=0.15)
  x = np.asarray(jax.random.normal(jax.random.key(1), (7, 5)), np.float64)
  z = x @ w.T
  expect = (np.sin(z) + np.cos(z)) @ u
  np.testing.assert_allclose(net.apply(params, jnp.asarray(x, jnp.float32)), expect,
                             rtol=1e-5, atol=1e-6)


def test_u0_zero_by_default_and_bad_norm():
  net = networks.make(r=8)
  params = networks.init(net, jax.random.key(0), 3)
  assert np.all(np.asarray(params["params"]["u"]) == 0)
  with pytest.raises(ValueError, match="u0_norm"):
    networks.make(r=8, u0_norm=2.0)
  with pytest.raises(KeyError, match="unknown"):
    networks.make(r=8, activation="nope")


@pytest.mark.parametrize("activation", ["relu", "sincos"])
def test_linearized_equals_network_at_w0_and_is_first_order(activation):
  net = networks.make(r=16, activation=activation, u0_norm=1.0)
  p0 = networks.init(net, jax.random.key(2), 4)
  x = jax.random.normal(jax.random.key(3), (32, 4), jnp.float32)
  chex.assert_trees_all_close(networks.linearized_apply(p0, p0, x, activation),
                              net.apply(p0, x), atol=1e-6)
  # N(W0 + tV) − N_lin(W0 + tV) = O(t^2) for a smooth σ; = 0 for ReLU while no sign flips.
  v = jax.random.normal(jax.random.key(4), p0["params"]["w"].shape, jnp.float32)
  diffs = []
  for t in (1e-2, 5e-3):
    p = {"params": {"w": p0["params"]["w"] + t * v, "u": p0["params"]["u"]}}
    diffs.append(float(jnp.max(jnp.abs(net.apply(p, x) -
                                        networks.linearized_apply(p, p0, x, activation)))))
  if activation == "relu":
    assert max(diffs) < 1e-3   # only the few pairs that flip sign contribute
  else:
    assert 3.0 < diffs[0] / diffs[1] < 5.0   # halving t quarters the gap
