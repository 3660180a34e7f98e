"""rfjax.testing.check_feature_map: passes on a correct map, fails with a message naming the
problem on broken ones (kernel off by a factor 2, non-deterministic init, wrong output shape)."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import features
from rfjax import testing


def _init(key, d, r):
  d, r = features.check_dims(d, r)
  g = jax.random.normal(key, (d, r))
  return {"w_dr": g / jnp.linalg.norm(g, axis=0, keepdims=True)}


def _apply(params, x_nd):
  return (x_nd @ params["w_dr"]) ** 2


def _kernel(x, y):
  d = x.shape[1]
  return ((x**2).sum(1)[:, None] * (y**2).sum(1)[None, :] + 2 * (x @ y.T) ** 2) / (d * (d + 2))


GOOD = features.FeatureMap(_init, _apply, _kernel)
_COUNTER = itertools.count()


def _noisy_init(key, d, r):
  """Ignores the key after the first call: a hidden global stream."""
  d, r = features.check_dims(d, r)
  return _init(jax.random.key(next(_COUNTER)), d, r)


def test_correct_map_passes():
  testing.check_feature_map(GOOD)


@pytest.mark.parametrize("broken, message, unaffected", [
    (GOOD._replace(kernel=lambda x, y: 2.0 * _kernel(x, y)),
     r"kernel: kernel\(x, x\)\[\d, \d\] = .* standard errors from the Monte Carlo mean",
     ["shapes", "dtype", "determinism", "jit", "vmap", "bad_dims", "ridge"]),
    (GOOD._replace(init=_noisy_init),
     "determinism: init called twice with the same key gave different params",
     ["shapes", "dtype", "bad_dims", "kernel", "ridge"]),
    (GOOD._replace(apply=lambda p, x: _apply(p, x)[:, :-1]),
     r"shapes: apply\(params, x\[4, 3\]\) returned shape \(4, 7\); expected \(n, r\) = \(4, 8\)",
     ["dtype", "determinism", "jit", "vmap", "bad_dims", "ridge"]),
], ids=["kernel_times_2", "nondeterministic_init", "wrong_shape"])
def test_broken_maps_fail_naming_the_problem(broken, message, unaffected):
  with pytest.raises(testing.FeatureMapError, match=message):
    testing.check_feature_map(broken)
  testing.check_feature_map(broken, checks=unaffected)   # the other checks pass it


def test_kernel_off_by_two_ratio_reported():
  broken = GOOD._replace(kernel=lambda x, y: 2.0 * _kernel(x, y))
  with pytest.raises(testing.FeatureMapError) as e:
    testing.check_feature_map(broken, checks=["kernel"])
  ratio = float(str(e.value).rsplit("ratio ", 1)[1])
  assert ratio == pytest.approx(2.0, rel=0.05)


def test_unknown_check_named():
  with pytest.raises(ValueError, match="unknown checks \\['nope'\\]"):
    testing.check_feature_map(GOOD, checks=["nope"])
  np.testing.assert_equal(list(testing.CHECKS)[:3], ["shapes", "dtype", "determinism"])
