"""The one-hidden-layer network N(W, U)(x) = Σ_i u_i σ(<w_i, x>) of the paper's Section 3
(docs/theory.md, 'SGD on the two-layer net').

A flax linen module (pure `init`/`apply`, so seeds vmap directly). Parameters are
`{"params": {"w": w_rd, "u": u_r}}`: W has one row per neuron, drawn "Xavier" on the
cube [−1/√d, 1/√d]^d (so ‖w_i‖ ≤ 1); U_0 = 0 by default, or uniform on the sphere of
radius `u0_norm`/√r (Thm 3.2 allows any ‖U_0‖ ≤ 1/√r). No bias, as in the paper's
Section 3.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rfjax import activations

Params = Any  # {"params": {"w": w_rd, "u": u_r}}


def cube_init(key: jax.Array, shape: tuple[int, int], dtype: Any = jnp.float32) -> jax.Array:
  """w_rd with i.i.d. entries U[−1/√d, 1/√d] (rows uniform on the Xavier cube)."""
  a = 1.0 / math.sqrt(shape[1])
  return jax.random.uniform(key, shape, dtype, minval=-a, maxval=a)


def sphere_init(norm: float) -> Callable[[jax.Array, tuple[int], Any], jax.Array]:
  """u_r uniform on the sphere of radius norm/√r (norm = 0: U_0 = 0)."""
  def init(key, shape, dtype=jnp.float32):
    if norm == 0.0:
      return jnp.zeros(shape, dtype)
    g = jax.random.normal(key, shape, dtype)
    return g * (norm / math.sqrt(shape[0]) / jnp.linalg.norm(g))
  return init


class TwoLayer(nn.Module):
  """N(W, U)(x_nd) = σ(x W^T) U, [n]. `activation` names an entry of rfjax.activations."""
  r: int
  activation: str = "relu"
  u0_norm: float = 0.0            # ‖U_0‖ = u0_norm / √r; Thm 3.2 needs u0_norm <= 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_nd: jax.Array) -> jax.Array:
    w_rd = self.param("w", cube_init, (self.r, x_nd.shape[-1]), self.dtype)
    u_r = self.param("u", sphere_init(self.u0_norm), (self.r,), self.dtype)
    # Neuron-major [r, n] hidden layer: its backward pass is u ⊗ g scaled by σ' and one
    # plain [r, n] @ [n, d] product for ∂W, the fast layout for XLA's CPU dots (about 2x
    # per SGD step against the [n, r] form at n = 64, r = 4096).
    h_rn = activations.get(self.activation).fn(
        jnp.matmul(w_rd, x_nd.T, precision=jax.lax.Precision.HIGHEST))
    return jnp.matmul(u_r, h_rn, precision=jax.lax.Precision.HIGHEST)


def make(r: int, activation: str = "relu", u0_norm: float = 0.0,
         dtype: Any = jnp.float32) -> TwoLayer:
  """The network of width r; raises ValueError for u0_norm outside [0, 1]."""
  if not 0.0 <= u0_norm <= 1.0:
    raise ValueError(f"u0_norm must lie in [0, 1] (‖U_0‖ ≤ 1/√r), got {u0_norm}")
  activations.get(activation)  # KeyError naming the known activations
  return TwoLayer(r=r, activation=activation, u0_norm=u0_norm, dtype=dtype)


def init(net: TwoLayer, key: jax.Array, d: int) -> Params:
  """Parameters of `net` for inputs of dimension d (W_0 Xavier cube, U_0 as configured)."""
  return net.init(key, jnp.zeros((1, d), net.dtype))


def preactivation(w_rd: jax.Array, x_nd: jax.Array) -> jax.Array:
  """<w_i, x_n> for every pair, [n, r]."""
  return jnp.matmul(x_nd, w_rd.T, precision=jax.lax.Precision.HIGHEST)


def hidden(w_rd: jax.Array, x_nd: jax.Array, activation: str) -> jax.Array:
  """σ(<w_i, x_n>), [n, r]."""
  return activations.get(activation).fn(preactivation(w_rd, x_nd))


def linearized_apply(params: Params, params0: Params, x_nd: jax.Array,
                     activation: str) -> jax.Array:
  """N_lin(W, U)(x) = Σ u_i [σ(<w0_i,x>) + σ'(<w0_i,x>) <w_i − w0_i, x>], [n].

  First order in W around W_0, exact (linear) in U: with U_0 = 0 the joint first-order
  model in (W, U) would be U-only (∂N/∂W = 0 at U = 0), i.e. just random features.
  For the ReLU it is Σ u_i 1{<w0_i,x> ≥ 0} <w_i, x>, the coupling model of the paper's
  Section 2 (docs/theory.md, 'Coupling features and odd targets').
  """
  w_rd, u_r = params["params"]["w"], params["params"]["u"]
  w0_rd = params0["params"]["w"]
  sigma = activations.get(activation).fn
  z0_nr = preactivation(w0_rd, x_nd)
  # σ'(z0) for every pair by forward-mode differentiation of the elementwise σ.
  s0_nr, ds0_nr = jax.jvp(sigma, (z0_nr,), (jnp.ones_like(z0_nr),))
  dz_nr = preactivation(w_rd - w0_rd, x_nd)
  return (s0_nr + ds0_nr * dz_nr) @ u_r
