"""Input distributions: Gaussian, cube, sphere and ball samplers, registered by name.

Every sampler is `(key, n, d, ..., dtype=jnp.float32) -> x_nd`; n and d are static Python ints.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from rfjax.registry import Registry

Sampler = Callable[..., jax.Array]

SAMPLERS: Registry[Sampler] = Registry("distribution")


def check_positive_int(name: str, value: Any) -> int:
  """Returns `value` as an int if it is a positive integer, else raises ValueError naming it."""
  if isinstance(value, bool):
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  try:
    out = operator.index(value)
  except TypeError:
    raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
  if out < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return out


def _check_positive(name: str, value: Any) -> None:
  """Raises ValueError unless `value` is a finite Python number > 0 (skipped for traced values)."""
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    if not 0 < value < float("inf"):
      raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@SAMPLERS.register("gaussian")
def gaussian(key: jax.Array, n: int, d: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
  """x_nd with rows i.i.d. N(0, I_d)."""
  n, d = check_positive_int("n", n), check_positive_int("d", d)
  return jax.random.normal(key, (n, d), dtype=dtype)


@SAMPLERS.register("cube")
def cube(key: jax.Array, n: int, d: int, a: float = 1.0,
         dtype: DTypeLike = jnp.float32) -> jax.Array:
  """x_nd with rows i.i.d. uniform on the cube [-a, a]^d."""
  n, d = check_positive_int("n", n), check_positive_int("d", d)
  _check_positive("a", a)
  return jax.random.uniform(key, (n, d), dtype=dtype, minval=-1.0, maxval=1.0) * jnp.asarray(
      a, dtype)


def unit_vectors(key: jax.Array, shape: tuple[int, ...], *, axis: int = -1,
                 radius: float = 1.0, dtype: DTypeLike = jnp.float32,
                 guard_zero: bool = True) -> jax.Array:
  """Vectors along `axis` of an array of `shape`, i.i.d. uniform on the sphere radius * S^{k-1}
  (k = shape[axis]): normalised Gaussians g / |g|, times the radius.

  The one home of "a direction uniform on a sphere": input points, the columns of w_dr
  (axis=0) and the targets' w* (radius R = d, `guard_zero=False`). guard_zero keeps a zero
  Gaussian vector (probability 0) finite; without it the vector is radius * g / |g|, which
  under jit XLA computes as radius * g * rsqrt(|g|²) (the guard's select prevents that
  rewrite), so the two differ in the last bit and each caller keeps the form its rows were
  first computed with.
  """
  g = jax.random.normal(key, shape, dtype=dtype)
  if not guard_zero:
    return radius * g / jnp.expand_dims(jnp.linalg.norm(g, axis=axis), axis)
  norm = jnp.linalg.norm(g, axis=axis, keepdims=True)
  return g / jnp.where(norm > 0, norm, 1) * jnp.asarray(radius, dtype)


@SAMPLERS.register("sphere")
def sphere(key: jax.Array, n: int, d: int, radius: float = 1.0,
           dtype: DTypeLike = jnp.float32) -> jax.Array:
  """x_nd with rows i.i.d. uniform on the sphere radius * S^{d-1}."""
  n, d = check_positive_int("n", n), check_positive_int("d", d)
  _check_positive("radius", radius)
  return unit_vectors(key, (n, d), radius=radius, dtype=dtype)


@SAMPLERS.register("ball")
def ball(key: jax.Array, n: int, d: int, radius: float = 1.0,
         dtype: DTypeLike = jnp.float32) -> jax.Array:
  """x_nd with rows i.i.d. uniform in the ball of the given radius (|x| = radius * U^{1/d})."""
  n, d = check_positive_int("n", n), check_positive_int("d", d)
  _check_positive("radius", radius)
  k_dir, k_rad = jax.random.split(key)
  u_n1 = jax.random.uniform(k_rad, (n, 1), dtype=dtype)
  rad_n1 = jnp.asarray(radius, dtype) * u_n1 ** (1.0 / d)
  return unit_vectors(k_dir, (n, d), dtype=dtype) * rad_n1


def sphere_and_ball(key_sphere: jax.Array, key_ball: jax.Array, n: int, d: int,
                    dtype: DTypeLike = jnp.float32) -> jax.Array:
  """x_nd: n // 2 rows uniform on the unit sphere (from key_sphere), then the rest uniform in
  the unit ball (from key_ball): test points for a sup over the ball that include its edge."""
  half = check_positive_int("n", n) // 2
  return jnp.concatenate([sphere(key_sphere, half, d, dtype=dtype),
                          ball(key_ball, n - half, d, dtype=dtype)])
