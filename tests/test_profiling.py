"""rfjax.profiling: compile time from JAX's own compile events."""
import time

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import profiling


def test_union_length_against_a_fine_grid():
  rng = np.random.default_rng(0)
  for _ in range(20):
    starts = rng.uniform(0, 10, 6)
    spans = [(s, s + rng.uniform(0, 3)) for s in starts]
    grid = np.linspace(0, 14, 140_001)
    covered = np.zeros_like(grid, bool)
    for a, b in spans:
      covered |= (grid >= a) & (grid <= b)
    np.testing.assert_allclose(profiling.union_length(spans), covered.mean() * 14, atol=1e-3)
  assert profiling.union_length([]) == 0.0
  assert profiling.union_length([(0, 2), (0.5, 1)]) == 2.0      # nested counts once


def test_clock_sees_a_compile_and_not_a_cached_call():
  x = jnp.arange(64.0).reshape(8, 8)

  @jax.jit
  def inner(y):
    return jnp.tanh(y) @ y

  @jax.jit
  def outer(y):                              # traces `inner` inside its own trace
    return jax.lax.fori_loop(0, 3, lambda i, z: inner(z) / 64.0, y)

  t0 = time.perf_counter()
  with profiling.CompileClock() as clock:
    outer(x).block_until_ready()
  wall = time.perf_counter() - t0
  first = clock.seconds()
  assert 0.0 < first <= wall                   # nested traces are not counted twice
  with profiling.CompileClock() as again:
    outer(x).block_until_ready()               # in JAX's in-memory cache: no compile event
  assert again.seconds() == 0.0
  assert clock.seconds() == first              # the first clock stopped listening


def test_process_clock_is_monotone():
  a = profiling.compile_seconds()
  jax.jit(lambda y: y * 3.0 + 1.0)(jnp.ones(5)).block_until_ready()
  b = profiling.compile_seconds()
  assert b > a >= 0.0
