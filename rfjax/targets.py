"""Targets y(x) for the limitation experiments and their exact Gaussian moments (PAPER §4).

A Target carries a sample-mode function x_nd -> y_n and the parameters that exact mode needs.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rfjax import gaussian, psi


class Target(NamedTuple):
  """name in {"linear", "relu_neuron", "psi"}; fn: x_nd -> y_n; w_d = w*; b = b* (may be traced);
  m and R = |w*| are static (psi only: they fix ψ's cut-off and the quadrature panels)."""
  name: str
  fn: Callable[[jax.Array], jax.Array]
  w_d: jax.Array
  b: Any
  m: int = 0
  R: float = 0.0


def _dot(x_nd: jax.Array, w_d: jax.Array) -> jax.Array:
  """<w, x_n>, [n]."""
  return jnp.matmul(x_nd, w_d.astype(x_nd.dtype), precision=jax.lax.Precision.HIGHEST)


def linear(w_d: ArrayLike) -> Target:
  """y = <w*, x>."""
  w_d = jnp.asarray(w_d)
  return Target("linear", lambda x_nd: _dot(x_nd, w_d), w_d, 0.0)


def relu_neuron(w_d: ArrayLike, b: ArrayLike) -> Target:
  """y = [<w*, x> + b*]_+ (PAPER §4.0); w* and b* may be traced."""
  w_d, b = jnp.asarray(w_d), jnp.asarray(b)
  return Target("relu_neuron", lambda x_nd: jax.nn.relu(_dot(x_nd, w_d) + b.astype(x_nd.dtype)),
                w_d, b)


def psi_target(w_d: ArrayLike, m: int, R: float | None = None) -> Target:
  """y = ψ(<w*, x>), A = 4m + 1, R = |w*| (PAPER §4.2). Under jit, pass R (static)."""
  w_d = jnp.asarray(w_d)
  if R is None:
    R = float(np.linalg.norm(np.asarray(w_d, dtype=np.float64)))
  return Target("psi", lambda x_nd: psi.psi(_dot(x_nd, w_d), m), w_d, 0.0, int(m), float(R))


def hard_neuron(w_d: ArrayLike, m: int, j: int) -> Target:
  """[<a w*, x> - a c_j]_+, a = 4m + 2, c_j the j-th ReLU offset of ψ (PAPER §4.3 step 5)."""
  _, _, offsets = psi.relu_decomposition(m)
  a = 4 * m + 2
  return relu_neuron(a * jnp.asarray(w_d), -a * float(offsets[j]))


def _norm(w_d: jax.Array) -> jax.Array:
  return jnp.sqrt(jnp.sum(w_d * w_d))


def _ridge_act(t: Target) -> str:
  return "linear" if t.name == "linear" else "relu"


def target_second_moment(t: Target) -> jax.Array:
  """E y^2 for x ~ N(0, I) (PAPER §5 item 1, §4.2 P2)."""
  if t.name == "psi":
    return jnp.asarray(psi.psi_norm_sq(t.R, t.m), jnp.result_type(t.w_d, 0.0))
  return gaussian.ridge_target_second(t.w_d, t.b, _ridge_act(t))


def target_mean(t: Target) -> jax.Array:
  """E y for x ~ N(0, I) (E ψ = 0 by oddness, PAPER §4.2 P0)."""
  if t.name == "psi":
    return jnp.zeros((), jnp.result_type(t.w_d, 0.0))
  return gaussian.ridge_target_mean(t.w_d, t.b, _ridge_act(t))


def target_cross(form: Any, t: Target) -> jax.Array:
  """c_r = E[f_i(x) y(x)] for ridge features (RidgeForm), exact."""
  if t.name == "psi":
    return psi.psi_target_cross(form, t.w_d, t.m, t.R)
  if t.name not in ("linear", "relu_neuron"):
    raise ValueError(f"unknown target {t.name!r}; expected 'linear', 'relu_neuron' or 'psi'")
  return gaussian.ridge_cross(form, t.w_d, t.b, _ridge_act(t))
