"""Dense factorizations that cannot deadlock XLA's CPU thread pool when vmapped.

On the CPU backend, jaxlib's LAPACK kernels (QR, eigh, Cholesky, triangular solves)
split a large enough batch of matrices into tasks on XLA's intra-op thread pool and
block until those tasks finish. Each waiting kernel holds a pool thread, and several run
at once: one per simulated device when a sweep is sharded over CPU devices
(`--xla_force_host_platform_device_count=8` on a 2-core machine), and also on a single
device, whose executor runs independent operations (e.g. one fit per training regime)
concurrently. Once every pool thread is such a waiting kernel, nothing is left to run
the tasks and the program hangs. A batch of one matrix runs inline, without the pool.

The wrappers here are the library's factorizations. Under `jax.vmap` on the CPU backend
they map the batch one matrix at a time (`lax.map`); on GPU and TPU they stay batched.
Both paths call the same routine per matrix, so the numbers are the same bit for bit;
`serial_batches()` forces either path (for tests).

They are for forward computations (fits and diagnostics); they do not define
derivatives.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

_FORCE: list[bool | None] = [None]          # set by serial_batches()


@contextlib.contextmanager
def serial_batches(enabled: bool | None = True):
  """Within the block (while tracing), vmapped factorizations map their batch one matrix
  at a time (True), use the batched LAPACK kernel (False), or decide from the backend
  (None, the default outside the block)."""
  previous = _FORCE[0]
  _FORCE[0] = enabled
  try:
    yield
  finally:
    _FORCE[0] = previous


def _serial() -> bool:
  """True where batched LAPACK kernels can deadlock: the CPU backend."""
  if _FORCE[0] is not None:
    return _FORCE[0]
  return jax.default_backend() == "cpu"


def _one_at_a_time(fn: Callable[..., Any]) -> Callable[..., Any]:
  """fn(*arrays), whose vmap maps the batch serially when `_serial()` holds at trace time."""

  @jax.custom_batching.custom_vmap
  def wrapped(*args):
    return fn(*args)

  @wrapped.def_vmap
  def _rule(axis_size, in_batched, *args):
    del axis_size
    if not _serial():
      axes = [0 if b else None for b in in_batched]
      out = jax.vmap(fn, in_axes=axes)(*args)
    else:
      batched = [a for a, b in zip(args, in_batched) if b]

      def one(xs):
        it = iter(xs)
        return wrapped(*[next(it) if b else a for a, b in zip(args, in_batched)])

      out = jax.lax.map(one, batched)
    return out, jax.tree.map(lambda _: True, out)

  return functools.wraps(fn)(wrapped)


@_one_at_a_time
def qr(a_mn: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Reduced QR: q [m, k], r [k, n], k = min(m, n) (jnp.linalg.qr, mode="reduced")."""
  return jnp.linalg.qr(a_mn)


@_one_at_a_time
def eigh(a_nn: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Eigenvalues [n] (ascending) and eigenvectors [n, n] of a symmetric matrix."""
  return jnp.linalg.eigh(a_nn)


@_one_at_a_time
def cholesky_solve(a_nn: jax.Array, b_n: jax.Array) -> jax.Array:
  """x [n] (or [n, k] for b [n, k]) with a x = b, a symmetric positive definite, by a
  lower Cholesky factor and two triangular solves."""
  return jsl.cho_solve(jsl.cho_factor(a_nn, lower=True), b_n)
