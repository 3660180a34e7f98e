"""rfjax.linalg: the same factorizations as jnp / numpy, batched or one matrix at a time,
and a sharded CPU sweep of batched QR that finishes (it deadlocked with the plain kernel)."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import linalg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spd(key, b, n):
  a = jax.random.normal(key, (b, n, n), jnp.float64)
  return jnp.einsum("bij,bkj->bik", a, a) + n * jnp.eye(n)[None]


@pytest.mark.parametrize("serial", [False, True])
def test_vmapped_matches_numpy(serial):
  k1, k2 = jax.random.split(jax.random.key(0))
  a = jax.random.normal(k1, (6, 9, 4), jnp.float64)
  s = _spd(k2, 6, 5)
  b = jax.random.normal(k2, (6, 5), jnp.float64)
  with linalg.serial_batches(serial):
    q, r = jax.jit(jax.vmap(linalg.qr))(a)
    w, v = jax.jit(jax.vmap(linalg.eigh))(s)
    x = jax.jit(jax.vmap(linalg.cholesky_solve))(s, b)
    x_shared = jax.jit(jax.vmap(linalg.cholesky_solve, in_axes=(None, 0)))(s[0], b)
  np.testing.assert_allclose(np.einsum("bij,bjk->bik", q, r), a, atol=1e-13)
  np.testing.assert_allclose(np.einsum("bji,bjk->bik", q, q), np.broadcast_to(np.eye(4), (6, 4, 4)),
                             atol=1e-13)
  np.testing.assert_allclose(w, np.linalg.eigvalsh(np.asarray(s)), rtol=1e-12)
  np.testing.assert_allclose(np.einsum("bij,bj,bkj->bik", v, w, v), s, rtol=1e-11, atol=1e-11)
  np.testing.assert_allclose(x, np.linalg.solve(np.asarray(s), np.asarray(b)[..., None])[..., 0],
                             rtol=1e-12)
  np.testing.assert_allclose(x_shared, np.linalg.solve(np.asarray(s[0]), np.asarray(b).T).T,
                             rtol=1e-12)


def test_serial_equals_batched_bitwise_nested():
  """Two vmap levels (e.g. seeds × radii), batched args mixed with shared ones."""
  key = jax.random.key(1)
  s = _spd(key, 12, 6).reshape(3, 4, 6, 6)
  b = jax.random.normal(key, (3, 4, 6), jnp.float64)
  fn = jax.vmap(jax.vmap(lambda a, y: (linalg.eigh(a)[0], linalg.qr(a)[1],
                                       linalg.cholesky_solve(a, y))))
  with linalg.serial_batches(False):
    batched = jax.jit(fn)(s, b)
  with linalg.serial_batches(True):
    serial = jax.jit(fn)(s, b)
  for got, want in zip(serial, batched):
    np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(linalg.eigh(s[1, 2])[0], batched[0][1, 2])


_SCRIPT = textwrap.dedent("""
    import functools, json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    from rfjax import linalg, sweep
    from rfjax.experiments import linear_rf
    fn = functools.partial(linear_rf._one_seed, d=32, r=16, feature="linear_sphere")
    errors = sweep.over_seeds(fn, sweep.seed_keys(jax.random.key(3), 1024))
    print(json.dumps(dict(devices=jax.device_count(), serial=linalg._serial(),
                          errors=errors.tolist())))
""")


def _sweep(n_dev: int) -> dict:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}",
             JAX_PLATFORMS="cpu")
  res = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert res.returncode == 0, res.stderr[-3000:]
  return json.loads(res.stdout.strip().splitlines()[-1])


def test_sharded_cpu_sweep_of_batched_qr_finishes_and_matches_one_device():
  """1024 seeds of a 32×16 QR on 8 simulated CPU devices: with jaxlib's batched kernel each
  device's QR waits on the shared intra-op pool, which hung on a 2-core machine."""
  one, eight = _sweep(1), _sweep(8)
  assert (one["devices"], one["serial"]) == (1, True)
  assert (eight["devices"], eight["serial"]) == (8, True)
  np.testing.assert_allclose(eight["errors"], one["errors"], rtol=0, atol=1e-12)
  assert abs(np.mean(one["errors"]) - 0.5) < 0.02            # Beta(8, 8) mean 1 − r/d
