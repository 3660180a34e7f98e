"""Seed sweeps: one vmapped computation over a batch of keys, sharded over devices.

`over_seeds` has a second, reference path: a plain Python loop that calls the per-seed
function once per key on the default device, without vmap or sharding. Turn it on for
one call with `loop=True`, or for everything inside `with sweep.python_loop():` (e.g. a
whole experiment, to check that its sharded sweep returns the rows a loop over the same
seeds returns). It is slower and meant for checks and debugging; multi-host runs do not
use it (every process would compute every seed).
"""
from __future__ import annotations

import contextlib
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
_LOOP = [False]                 # set by python_loop()


@contextlib.contextmanager
def python_loop(enabled: bool = True):
  """Within the block, over_seeds calls default to the plain Python loop over seeds."""
  previous = _LOOP[0]
  _LOOP[0] = enabled
  try:
    yield
  finally:
    _LOOP[0] = previous


def _identity(fn: Callable[..., Any]) -> Any:
  """A hashable identity for `fn`: partials compare by function and bound values."""
  if isinstance(fn, functools.partial):
    return (_identity(fn.func), fn.args, tuple(sorted(fn.keywords.items())))
  return fn


def _compiled(fn: Callable[..., Any], num_args: int, jit: bool, n_dev: int = 1,
              batched: bool = True, num_per_seed: int = 0,
              batch_size: int | None = None) -> Callable[..., Any]:
  """jit(vmap(fn)) (or plain vmap; or jit(fn) / fn unbatched) built once per
  (fn, bound static values, arity, device count). On several devices the vmapped
  function runs under shard_map: each device computes its own slice of the seeds with
  the per-seed program unchanged (no sharding propagation into fn's operations, so
  every primitive, QR and eigh included, works as on one device; on CPU, per-seed
  factorizations come from rfjax.linalg, whose vmap cannot deadlock the shared thread
  pool). check_vma is off so that per-seed code need not mark which values vary over
  seeds (e.g. a lax.scan carry that starts from a replicated input). With batch_size, each device maps over its seeds
  in groups of batch_size (lax.map): one group's memory at a time instead of all seeds'."""
  ident = (_identity(fn), num_args, jit, n_dev, batched, num_per_seed, batch_size)
  if ident not in _COMPILED:
    split = (0,) * (1 + num_per_seed)
    one = jax.vmap(fn, in_axes=split + (None,) * num_args) if batched else fn
    if batched and batch_size is not None:
      k = len(split)
      one = lambda *a: jax.lax.map(lambda xs: fn(*xs, *a[k:]), a[:k], batch_size=batch_size)
    if batched and n_dev > 1:
      one = jax.shard_map(one, mesh=_mesh(),
                          in_specs=(P("seeds"),) * len(split) + (P(),) * num_args,
                          out_specs=P("seeds"), check_vma=False)
    _COMPILED[ident] = jax.jit(one) if jit else one
  return _COMPILED[ident]


def _loop(fn: Callable[..., Any], keys: jax.Array, per_seed: tuple[Any, ...],
          args: tuple[Any, ...], jit: bool) -> Any:
  """fn(key, *per_seed[i], *args) for each key in turn, stacked on a leading seed axis."""
  one = _compiled(fn, len(args), jit, batched=False)
  outs = []
  for i in range(keys.shape[0]):
    mine = jax.tree.map(lambda a: a[i], per_seed)
    outs.append(jax.tree.map(np.asarray, one(keys[i], *mine, *args)))
  return jax.tree.map(lambda *xs: np.stack(xs), *outs)


def over_seeds(fn: Callable[..., Any], keys: jax.Array, *args: Any, jit: bool = True,
               loop: bool | None = None, per_seed: tuple[Any, ...] = (),
               batch_size: int | None = None) -> Any:
  """Runs `fn(key, *args)` for every key with one jit(vmap(fn)), sharded over devices.

  The keys are sharded over a `seeds` mesh axis and each device runs vmap(fn) on its
  slice (shard_map); the shared inputs are replicated.

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
    per_seed: inputs with a leading seed axis [s, ...] (pytrees, e.g. a training state
      carried from an earlier call), sharded like the keys; fn is then called as
      fn(key, *per_seed_for_this_seed, *args).
    jit: compile the whole per-seed computation as one program (see above).
    loop: run a plain Python loop over the keys instead (jit(fn) per key, or fn with
      jit=False), on the default device; None takes the setting of `python_loop()`.
    batch_size: seeds vmapped at once on a device; groups run one after another in the
      same program (lax.map), so peak memory is that of batch_size seeds, not of all
      (e.g. for per-seed features or Gram matrices). None: all of a device's seeds at once.
  Returns:
    The pytree of outputs with a leading seed axis [s, ...], as numpy arrays.
  """
  num = keys.shape[0]
  if num == 0:
    raise ValueError("over_seeds needs at least one key")
  if _LOOP[0] if loop is None else loop:
    return _loop(fn, keys, tuple(per_seed), args, jit)
  n_dev = jax.device_count()
  pad = (-num) % n_dev
  batched = (keys, *per_seed)
  if pad:
    batched = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]),
                           batched)
  if batch_size is not None and batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  run = _compiled(fn, len(args), jit, n_dev, num_per_seed=len(per_seed), batch_size=batch_size)
  if n_dev > 1:
    mesh = _mesh()
    batched = jax.device_put(batched, NamedSharding(mesh, P("seeds")))
    with jax.set_mesh(mesh):
      out = run(*batched, *args)
  else:
    out = run(*batched, *args)
  if jax.process_count() > 1:                  # multi-host: gather every host's shard
    from jax.experimental import multihost_utils
    out = multihost_utils.process_allgather(out, tiled=True)
  return jax.tree.map(lambda a: np.asarray(a)[:num], out)
