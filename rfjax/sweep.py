"""Seed sweeps: one vmapped computation over a batch of keys, sharded over devices."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P


def seed_keys(key: jax.Array, num_seeds: int) -> jax.Array:
  """Per-seed keys `fold_in(key, s)`: seed s's stream does not depend on num_seeds. [s]."""
  return jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(num_seeds))


def _mesh() -> jax.sharding.Mesh:
  n_dev = jax.device_count()
  return jax.make_mesh((n_dev,), ("seeds",), axis_types=(jax.sharding.AxisType.Explicit,))


_COMPILED: dict[Any, Callable[..., Any]] = {}


def _identity(fn: Callable[..., Any]) -> Any:
  """A hashable identity for `fn`: partials compare by function and bound values."""
  if isinstance(fn, functools.partial):
    return (_identity(fn.func), fn.args, tuple(sorted(fn.keywords.items())))
  return fn


def _compiled(fn: Callable[..., Any], num_args: int, jit: bool) -> Callable[..., Any]:
  """jit(vmap(fn)) (or plain vmap) built once per (fn, bound static values, arity)."""
  ident = (_identity(fn), num_args, jit)
  if ident not in _COMPILED:
    in_axes = (0,) + (None,) * num_args
    batched = jax.vmap(fn, in_axes=in_axes)
    _COMPILED[ident] = jax.jit(batched) if jit else batched
  return _COMPILED[ident]


def over_seeds(fn: Callable[..., Any], keys: jax.Array, *args: Any, jit: bool = True) -> Any:
  """Runs `fn(key, *args)` for every key with one jit(vmap(fn)), sharded over devices.

  Seed counts that do not divide the device count are padded (with repeated keys)
  and trimmed. `fn` must be hashable and stable (a module-level function or a
  functools.partial of one with static values) so the compiled program is reused.
  With `jit=False` the seeds are still one vmapped computation, but without an outer
  jit: the jitted library functions inside `fn` (exact-mode moments, box fits) then
  compile on their own and their executables are reused across grid cells, instead
  of one large program being compiled per cell.

  Args:
    fn: per-seed computation, key -> pytree of arrays.
    keys: [s] typed PRNG keys.
    *args: shared (unbatched) inputs, replicated to every device.
  Returns:
    The pytree of outputs with a leading seed axis [s, ...], as numpy arrays.
  """
  num = keys.shape[0]
  if num == 0:
    raise ValueError("over_seeds needs at least one key")
  n_dev = jax.device_count()
  pad = (-num) % n_dev
  if pad:
    keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, axis=0)])
  run = _compiled(fn, len(args), jit)
  if n_dev > 1:
    mesh = _mesh()
    keys = jax.device_put(keys, NamedSharding(mesh, P("seeds")))
    with jax.set_mesh(mesh):
      out = run(keys, *args)
  else:
    out = run(keys, *args)
  if jax.process_count() > 1:                  # multi-host: gather every host's shard
    from jax.experimental import multihost_utils
    out = multihost_utils.process_allgather(out, tiled=True)
  return jax.tree.map(lambda a: np.asarray(a)[:num], out)
