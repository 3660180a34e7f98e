"""Seed sweeps: vmapped == Python loop; padding to the device count; one compile."""
import functools
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import sweep


def _fit(key, *, d):
  x = jax.random.normal(key, (d,))
  return dict(norm=jnp.sum(x**2), first=x[0])


def test_over_seeds_equals_python_loop():
  keys = sweep.seed_keys(jax.random.key(3), 5)
  fn = functools.partial(_fit, d=4)
  out = sweep.over_seeds(fn, keys)
  loop = [_fit(k, d=4) for k in keys]
  np.testing.assert_allclose(out["norm"], [float(l["norm"]) for l in loop], rtol=1e-12)
  np.testing.assert_allclose(out["first"], [float(l["first"]) for l in loop], rtol=1e-12)


def test_seed_stream_does_not_depend_on_num_seeds():
  key = jax.random.key(0)
  a = sweep.over_seeds(functools.partial(_fit, d=3), sweep.seed_keys(key, 3))
  b = sweep.over_seeds(functools.partial(_fit, d=3), sweep.seed_keys(key, 7))
  np.testing.assert_array_equal(a["norm"], b["norm"][:3])


def test_compiled_once_for_equal_partials():
  calls = []

  def fit(key, *, scale):
    calls.append(1)                      # runs once per trace
    return scale * jax.random.uniform(key)

  keys = sweep.seed_keys(jax.random.key(0), 4)
  sweep.over_seeds(functools.partial(fit, scale=2.0), keys)
  sweep.over_seeds(functools.partial(fit, scale=2.0), keys)
  assert len(calls) == 1


def test_sharded_over_8_devices_matches_single_device():
  code = textwrap.dedent("""
      import functools, jax, jax.numpy as jnp, numpy as np
      jax.config.update("jax_enable_x64", True)
      from rfjax import sweep
      def fit(key, *, d):
        x = jax.random.normal(key, (64, d))
        return jnp.linalg.norm(x.T @ x)
      keys = sweep.seed_keys(jax.random.key(1), 11)
      out = sweep.over_seeds(functools.partial(fit, d=5), keys)
      def carry(key, state, scale):            # a per-seed input, e.g. a training state
        q, _ = jnp.linalg.qr(jax.random.normal(key, (4, 3)))
        return dict(x=state["x"] * scale + jnp.sum(q ** 2), n=state["n"] + 1)
      state = dict(x=np.arange(11.0), n=np.zeros(11, np.int32))
      for _ in range(2):
        state = sweep.over_seeds(carry, keys, 0.5, per_seed=(state,))
      assert state["n"].tolist() == [2] * 11
      print(jax.device_count(), repr(np.asarray(out).tolist() + state["x"].tolist()))
  """)
  outs = []
  for n_dev in (1, 8):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}",
               JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    count, values = res.stdout.strip().split(" ", 1)
    assert int(count) == n_dev
    outs.append(np.array(eval(values)))
  assert outs[0].shape == (22,)
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12)
  # The carried values by hand: x_s/4 + 3/2 + 3 (each step adds ‖Q‖_F² = 3).
  np.testing.assert_allclose(outs[0][11:], np.arange(11.0) / 4 + 1.5 + 3, rtol=1e-12)


def test_loop_path_calls_fn_once_per_key_and_matches_hand_loop():
  keys = sweep.seed_keys(jax.random.key(5), 3)
  seen = []

  def fit(key, scale):
    seen.append(isinstance(key, jax.core.Tracer))
    x = jax.random.normal(key, (2,))
    return dict(x=scale * x, s=jnp.sum(x))

  out = sweep.over_seeds(fit, keys, 2.0, jit=False, loop=True)
  assert seen == [False, False, False]     # eager: one call per concrete key, no vmap
  want = np.stack([2.0 * np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(5), s),
                                                      (2,))) for s in range(3)])
  np.testing.assert_array_equal(out["x"], want)
  assert out["s"].shape == (3,)


def test_python_loop_context_sets_the_default_and_restores_it():
  calls = []

  def fit(key, *, d):
    calls.append(1)
    return jnp.sum(jax.random.normal(key, (d,)) ** 2)

  keys = sweep.seed_keys(jax.random.key(2), 4)
  fn = functools.partial(fit, d=6)
  with sweep.python_loop():
    looped = sweep.over_seeds(fn, keys, jit=False)
    assert len(calls) == 4                 # eager, once per seed
    assert sweep.over_seeds(fn, keys, jit=False, loop=False).shape == (4,)  # argument wins
    assert len(calls) == 5                 # vmap traces fn once for all seeds
  vmapped = sweep.over_seeds(fn, keys, jit=False)   # back to the vmapped default
  assert len(calls) == 6
  np.testing.assert_allclose(looped, vmapped, rtol=1e-12)


def test_per_seed_inputs_follow_their_seed_in_both_paths():
  keys = sweep.seed_keys(jax.random.key(7), 5)
  x_s = np.arange(5.0) * 10

  def fit(key, x, offset):
    return x + offset + jax.random.uniform(key)

  vmapped = sweep.over_seeds(fit, keys, 1.0, per_seed=(x_s,))
  looped = sweep.over_seeds(fit, keys, 1.0, per_seed=(x_s,), loop=True)
  want = [x_s[s] + 1.0 + float(jax.random.uniform(keys[s])) for s in range(5)]
  np.testing.assert_allclose(vmapped, want, rtol=1e-12)
  np.testing.assert_allclose(looped, want, rtol=1e-12)


def _gram_norm(key, *, n, r):
  x = jax.random.normal(key, (n, r))
  return jnp.linalg.norm(x.T @ x)


def test_batch_size_groups_match_all_at_once_and_cut_memory():
  keys = sweep.seed_keys(jax.random.key(5), 7)
  fn = functools.partial(_gram_norm, n=300, r=40)
  full = sweep.over_seeds(fn, keys)
  for b in (1, 3, 7, 20):                    # 3 leaves a remainder group
    np.testing.assert_allclose(sweep.over_seeds(fn, keys, batch_size=b), full, rtol=1e-12)
  loop = [float(fn(k)) for k in keys]
  np.testing.assert_allclose(sweep.over_seeds(fn, keys, batch_size=2), loop, rtol=1e-12)
  big = functools.partial(_gram_norm, n=2000, r=200)
  keys16 = sweep.seed_keys(jax.random.key(6), 16)

  def temp_bytes(batch_size):
    run = sweep._compiled(big, 0, True, batch_size=batch_size)  # pylint: disable=protected-access
    stats = run.lower(keys16).compile().memory_analysis()
    return None if stats is None else stats.temp_size_in_bytes

  everything, grouped = temp_bytes(None), temp_bytes(2)
  if everything is not None:
    per_seed = 2000 * 200 * 8
    assert everything >= 16 * per_seed and everything > 4 * grouped, (everything, grouped)
  try:
    sweep.over_seeds(fn, keys, batch_size=0)
  except ValueError as e:
    assert "batch_size" in str(e)
  else:
    raise AssertionError("batch_size=0 accepted")
