"""Targets y(x) for the limitation experiments and their exact Gaussian moments.

A Target carries a sample-mode function x_nd -> y_n and the parameters exact mode needs. A
ridge target y = h(<w*, x> + b*) carries h's activation record, and its moments dispatch on
that record (rfjax.gaussian); ψ_{w*} carries (m, R) (docs/theory.md, 'ψ and Prop. 4.4').
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rfjax import activations
from rfjax import gaussian
from rfjax import psi


class Target(NamedTuple):
  """name: a label ("linear", "relu_neuron", "psi", ...); fn: x_nd -> y_n; w_d = w*; b = b*
  (may be traced); activation: the record of a ridge target h (None for ψ); m and R = |w*|
  are static (ψ only: they fix ψ's cut-off and the quadrature panels)."""
  name: str
  fn: Callable[[jax.Array], jax.Array]
  w_d: jax.Array
  b: Any
  m: int = 0
  R: float = 0.0
  activation: Any = None


def _dot(x_nd: jax.Array, w_d: jax.Array) -> jax.Array:
  """<w, x_n>, [n]."""
  return jnp.matmul(x_nd, w_d.astype(x_nd.dtype), precision=jax.lax.Precision.HIGHEST)


def ridge(w_d: ArrayLike, b: ArrayLike, activation: Any, name: str | None = None) -> Target:
  """y = h(<w*, x> + b*) for any activation h (a record or a registered name)."""
  act = activations.get(activation) if isinstance(activation, str) else activation
  w_d, b = jnp.asarray(w_d), jnp.asarray(b)
  return Target(name or f"{act.name}_neuron",
                lambda x_nd: act.fn(_dot(x_nd, w_d) + b.astype(x_nd.dtype)), w_d, b,
                activation=act)


def linear(w_d: ArrayLike) -> Target:
  """y = <w*, x>."""
  return ridge(w_d, 0.0, "linear", name="linear")


def relu_neuron(w_d: ArrayLike, b: ArrayLike) -> Target:
  """y = [<w*, x> + b*]_+ (the single neuron of Thm. 4.3); w* and b* may be traced."""
  return ridge(w_d, b, "relu", name="relu_neuron")


def psi_target(w_d: ArrayLike, m: int, R: float | None = None) -> Target:
  """y = ψ(<w*, x>), A = 4m + 1, R = |w*|. Under jit, pass R (static)."""
  w_d = jnp.asarray(w_d)
  if R is None:
    R = float(np.linalg.norm(np.asarray(w_d, dtype=np.float64)))
  return Target("psi", lambda x_nd: psi.psi(_dot(x_nd, w_d), m), w_d, 0.0, int(m), float(R))


def hard_neuron(w_d: ArrayLike, m: int, j: int) -> Target:
  """[<a w*, x> - a c_j]_+, a = 4m + 2, c_j the j-th ReLU offset of ψ (docs/theory.md,
  'Limits of random features')."""
  _, _, offsets = psi.relu_decomposition(m)
  a = 4 * m + 2
  return relu_neuron(a * jnp.asarray(w_d), -a * float(offsets[j]))


def target_second_moment(t: Target) -> jax.Array:
  """E y^2 for x ~ N(0, I) (ψ: P2 of docs/theory.md, 'ψ and Prop. 4.4')."""
  gaussian.require_x64("targets.target_second_moment")
  if t.activation is None:
    return jnp.asarray(psi.psi_norm_sq(t.R, t.m), jnp.result_type(t.w_d, 0.0))
  return gaussian.ridge_target_second(t.w_d, t.b, t.activation)


def target_mean(t: Target) -> jax.Array:
  """E y for x ~ N(0, I) (E ψ = 0 by oddness, P0)."""
  gaussian.require_x64("targets.target_mean")
  if t.activation is None:
    return jnp.zeros((), jnp.result_type(t.w_d, 0.0))
  return gaussian.ridge_target_mean(t.w_d, t.b, t.activation)


def target_cross(form: Any, t: Target) -> jax.Array:
  """c_r = E[f_i(x) y(x)] for ridge features (RidgeForm), exact."""
  gaussian.require_x64("targets.target_cross")
  if t.activation is None:
    return psi.psi_target_cross(form, t.w_d, t.m, t.R)
  return gaussian.ridge_cross(form, t.w_d, t.b, t.activation)
