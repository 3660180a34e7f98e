"""Random feature maps: pure (init, apply, kernel) records, registered by name.

A feature map samples r random functions f_1..f_r of x in R^d:
  init(key, d, r) -> params (a pytree of arrays; shapes carry r),
  apply(params, x_nd) -> phi_nr, UNSCALED: column i is f_i(x), so output weights u_i multiply it,
  kernel(x_nd, y_md) -> k_nm = E_params[f(x) f(y)] for ONE feature, in closed form, or None,
  ridge(params) -> RidgeForm when every f_i is act(<w_i, x> + b_i) (exact mode), or None;
  act is an activation record (rfjax.activations) or its registered name, and exact mode uses
  whatever that record knows (closed forms, else quadrature at its kinks).
A new feature map is one FeatureMap and one `register` call; nothing else needs editing.
Every built-in init also takes an optional `dtype` keyword (default: JAX's default float, i.e.
float64 when x64 is on); apply takes its dtype from params and x.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from rfjax import distributions
from rfjax import gaussian
from rfjax.distributions import check_positive_int
from rfjax.registry import Registry

Params = Any

# Feature values feed Gram matrices and correlations: no TF32/bf16 passes on GPU/TPU.
_HIGHEST = jax.lax.Precision.HIGHEST


class RidgeForm(NamedTuple):
  """f_i(x) = act(<w_i, x> + b_i); exact mode understands these for any activation whose
  record has exact mode (activations.exact_names(); a registered name or the record itself)."""
  w_dr: jax.Array
  b_r: jax.Array
  activation: Any  # an activations.Activation, or its registered name ("relu", "linear", ...)


class FeatureMap(NamedTuple):
  """init(key, d, r) -> params; apply(params, x_nd) -> phi_nr (unscaled);
  kernel(x_nd, y_md) -> k_nm = E[f(x) f(y)] for one feature, or None; ridge(params) -> RidgeForm."""
  init: Callable[[jax.Array, int, int], Params]
  apply: Callable[[Params, jax.Array], jax.Array]
  kernel: Callable[[jax.Array, jax.Array], jax.Array] | None = None
  ridge: Callable[[Params], RidgeForm] | None = None
  description: str = ""


FEATURE_MAPS: Registry[FeatureMap] = Registry("feature map")


def register(name: str, fm: FeatureMap) -> FeatureMap:
  """Registers `fm` under `name` (a name registered again is replaced, with a warning)."""
  if not isinstance(fm, FeatureMap):
    raise TypeError(f"feature map {name!r} must be a FeatureMap, got {type(fm).__name__}")
  return FEATURE_MAPS.register(name, fm)


def get(name: str) -> FeatureMap:
  """The feature map registered under `name` (KeyError listing the known names)."""
  return FEATURE_MAPS.get(name)


def names() -> list[str]:
  """Sorted names of the registered feature maps."""
  return FEATURE_MAPS.names()


def kernel_monte_carlo(fm: FeatureMap, x_nd: ArrayLike, key: jax.Array, num_features: int
                       ) -> tuple[np.ndarray, np.ndarray]:
  """(mc_nn, se_nn): the mean of f_i(x_a) f_i(x_b) over num_features features f_i drawn with
  `key` (an unbiased estimate of fm.kernel(x, x)), and its standard error (std / √r)."""
  x_nd = jnp.asarray(x_nd)
  phi_nr = np.asarray(fm.apply(fm.init(key, x_nd.shape[1], num_features), x_nd))
  prod_rnn = phi_nr.T[:, :, None] * phi_nr.T[:, None, :]
  return prod_rnn.mean(axis=0), prod_rnn.std(axis=0) / math.sqrt(num_features)


def check_dims(d: Any, r: Any) -> tuple[int, int]:
  """(d, r) as ints; ValueError unless both are positive integers. Use in every init."""
  return check_positive_int("d", d), check_positive_int("r", r)


def _float_dtype(dtype: DTypeLike | None) -> jnp.dtype:
  """`dtype`, or JAX's default float dtype (float64 iff x64 is enabled)."""
  return jnp.dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(jnp.float64)


def _matmul(a: ArrayLike, b: ArrayLike) -> jax.Array:
  """a @ b at full precision on every backend."""
  return jnp.matmul(a, b, precision=_HIGHEST)


def _make_init(sample: Callable[[jax.Array, int, int, DTypeLike], Params]
               ) -> Callable[..., Params]:
  """init(key, d, r, dtype=None): validates d and r, then calls `sample(key, d, r, dtype)`."""

  def init(key: jax.Array, d: int, r: int, dtype: DTypeLike | None = None) -> Params:
    d, r = check_dims(d, r)
    return sample(key, d, r, _float_dtype(dtype))

  init.__doc__ = sample.__doc__
  return init


def _register_builtin(name: str, fm: FeatureMap) -> FeatureMap:
  """Registers a built-in family whose `init` field is a plain sampler (key, d, r, dtype)."""
  return register(name, fm._replace(init=_make_init(fm.init)))


# ----------------------------------------------------------------------------------------------
# Sampling helpers for weights w_dr (column i is w_i).


def _sphere_dr(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> jax.Array:
  """w_dr with columns i.i.d. uniform on the unit sphere S^{d-1}."""
  return distributions.unit_vectors(key, (d, r), axis=0, dtype=dtype)


def _xavier_cube_dr(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> jax.Array:
  """w_dr with columns i.i.d. uniform on the Xavier cube [-1/sqrt d, 1/sqrt d]^d (Section 3)."""
  bound = 1.0 / math.sqrt(d)
  return jax.random.uniform(key, (d, r), dtype=dtype, minval=-bound, maxval=bound)


# ----------------------------------------------------------------------------------------------
# Closed-form kernels.


def _sq_dists(x_nd: jax.Array, y_md: jax.Array) -> jax.Array:
  """|x_n - y_m|^2 as [n, m], clipped at 0 against rounding."""
  xx_n1 = jnp.sum(x_nd * x_nd, axis=1, keepdims=True)
  yy_1m = jnp.sum(y_md * y_md, axis=1, keepdims=True).T
  return jnp.maximum(xx_n1 + yy_1m - 2 * _matmul(x_nd, y_md.T), 0)


def _relu_sphere_kernel(x_nd: ArrayLike, y_md: ArrayLike) -> jax.Array:
  """E_{w~U(S^{d-1})}[<w,x>]_+[<w,y>]_+ = arccos1 / d (w = g/|g|, |g| indep. of w, E|g|^2 = d)."""
  x_nd = jnp.asarray(x_nd)
  return gaussian.arccos1(x_nd, y_md) / x_nd.shape[1]


def _linear_sphere_kernel(x_nd: ArrayLike, y_md: ArrayLike) -> jax.Array:
  """E_{w~U(S^{d-1})}<w,x><w,y> = <x,y>/d, since E[w w^T] = I/d."""
  x_nd, y_md = jnp.asarray(x_nd), jnp.asarray(y_md)
  return _matmul(x_nd, y_md.T) / x_nd.shape[1]


def _rff_kernel(x_nd: ArrayLike, y_md: ArrayLike) -> jax.Array:
  """E cos(<w,x>+b) cos(<w,y>+b) = exp(-|x-y|^2/(2d)) / 2 for w ~ N(0, I/d), b ~ U[0, 2 pi]."""
  x_nd, y_md = jnp.asarray(x_nd), jnp.asarray(y_md)
  d = x_nd.shape[1]
  return 0.5 * jnp.exp(-_sq_dists(x_nd, y_md) / (2 * d))


def _kernel_points_kernel(x_nd: ArrayLike, y_md: ArrayLike) -> jax.Array:
  """E_{z~N(0,I)} k(z,x) k(z,y) for k(z,x) = exp(-|x-z|^2/(2d)).

  Completing the square per coordinate (a = 1/d):
    = (1 + 2/d)^{-d/2} exp(-|x-y|^2/(4d) - |x+y|^2/(4(d+2))).
  """
  x_nd, y_md = jnp.asarray(x_nd), jnp.asarray(y_md)
  d = x_nd.shape[1]
  minus_nm = _sq_dists(x_nd, y_md)
  plus_nm = _sq_dists(x_nd, -y_md)
  log_c = -0.5 * d * math.log1p(2.0 / d)
  return jnp.exp(log_c - minus_nm / (4 * d) - plus_nm / (4 * (d + 2)))


# ----------------------------------------------------------------------------------------------
# Ridge families: params = {"w_dr": [d, r], "b_r": [r]}.


def _ridge_apply(activation: str) -> Callable[[Params, jax.Array], jax.Array]:
  """apply(params, x_nd) = act(x @ w + b) for a ridge family."""
  act = {"relu": jax.nn.relu, "linear": lambda z: z, "tanh": jnp.tanh}[activation]

  def apply(params: Params, x_nd: ArrayLike) -> jax.Array:
    """phi_nr = act(x_nd @ w_dr + b_r)."""
    z_nr = _matmul(jnp.asarray(x_nd), params["w_dr"]) + params["b_r"][None, :]
    return act(z_nr)

  return apply


def _ridge_form(activation: str) -> Callable[[Params], RidgeForm]:
  """params -> RidgeForm(w_dr, b_r, activation)."""

  def ridge(params: Params) -> RidgeForm:
    """The ridge description of the features."""
    return RidgeForm(params["w_dr"], params["b_r"], activation)

  return ridge


def _ridge_init(sample_w: Callable[[jax.Array, int, int, DTypeLike], jax.Array],
                biased: bool = False) -> Callable[..., Params]:
  """Sampler (key, d, r, dtype) -> {"w_dr", "b_r"}; b ~ N(0, 1) if biased else 0."""

  def init(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> Params:
    """{"w_dr": [d, r], "b_r": [r]}."""
    k_w, k_b = jax.random.split(key)
    w_dr = sample_w(k_w, d, r, dtype)
    if biased:
      b_r = jax.random.normal(k_b, (r,), dtype=dtype)
    else:
      b_r = jnp.zeros((r,), dtype)
    return {"w_dr": w_dr, "b_r": b_r}

  return init


def _gauss_dr(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> jax.Array:
  """w_dr with columns i.i.d. N(0, I_d)."""
  return jax.random.normal(key, (d, r), dtype=dtype)


_register_builtin("relu_sphere", FeatureMap(
    init=_ridge_init(_sphere_dr), apply=_ridge_apply("relu"), kernel=_relu_sphere_kernel,
    ridge=_ridge_form("relu"),
    description="[<w,x>]_+, w uniform on the unit sphere (Section 4); kernel arc-cos / d"))

_register_builtin("relu_gauss", FeatureMap(
    init=_ridge_init(_gauss_dr), apply=_ridge_apply("relu"), kernel=gaussian.arccos1,
    ridge=_ridge_form("relu"),
    description="[<w,x>]_+, w ~ N(0, I_d); kernel arc-cos order 1"))

_register_builtin("relu_cube", FeatureMap(
    init=_ridge_init(_xavier_cube_dr), apply=_ridge_apply("relu"), kernel=None,
    ridge=_ridge_form("relu"),
    description="[<w,x>]_+, w uniform on the Xavier cube [-1/sqrt d, 1/sqrt d]^d (Section 3)"))

_register_builtin("relu_biased", FeatureMap(
    init=_ridge_init(_sphere_dr, biased=True), apply=_ridge_apply("relu"), kernel=None,
    ridge=_ridge_form("relu"),
    description="[<w,x> + b]_+, w uniform on the unit sphere, b ~ N(0, 1)"))

_register_builtin("linear_sphere", FeatureMap(
    init=_ridge_init(_sphere_dr), apply=_ridge_apply("linear"), kernel=_linear_sphere_kernel,
    ridge=_ridge_form("linear"),
    description="<w,x>, w uniform on the unit sphere (Prop. 4.1); kernel <x,y>/d"))

_register_builtin("tanh_cube", FeatureMap(
    init=_ridge_init(_xavier_cube_dr), apply=_ridge_apply("tanh"), kernel=None, ridge=None,
    description="tanh(<w,x>), analytic sigma, w uniform on the Xavier cube (Section 3)"))


# ----------------------------------------------------------------------------------------------
# Random multi-layer net (Thm 4.2): f_i(x) = unit i of the last hidden layer of a random net.

DEEP_NET_WIDTH = 64


def _sphere_columns_init(key: jax.Array, shape: tuple[int, int],
                         dtype: DTypeLike = jnp.float32) -> jax.Array:
  """Dense kernel [d, h] whose columns (the rows of W in Wx) are uniform on the unit sphere."""
  return _sphere_dr(key, shape[0], shape[1], dtype)


class RandomNet(nn.Module):
  """x -> h = relu(W1 x + b1) -> relu(W2 h + b2), the r units of the last hidden layer.

  Rows of W1 uniform on S^{d-1} (f(Wx) with a random W, Thm 4.2), W2 He-normal, biases
  N(0, 1). The r features are ReLU units of their own, so the family's span is not limited
  by the width of the layer before it (a linear read-out of a narrow layer would be).
  """
  r: int
  width: int = DEEP_NET_WIDTH
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_nd: jax.Array) -> jax.Array:
    """phi_nr: the r units of the last hidden layer."""
    normal = nn.initializers.normal(1.0)
    h_nh = nn.relu(nn.Dense(self.width, kernel_init=_sphere_columns_init, bias_init=normal,
                            param_dtype=self.param_dtype, precision=_HIGHEST, name="w1")(x_nd))
    return nn.relu(nn.Dense(self.r, kernel_init=nn.initializers.he_normal(), bias_init=normal,
                            param_dtype=self.param_dtype, precision=_HIGHEST, name="w2")(h_nh))


def _deep_net_init(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> Params:
  """Linen variables {"params": {"w1": {kernel [d, 64], bias [64]}, "w2": {kernel [64, r],
  bias [r]}}}."""
  return RandomNet(r=r, param_dtype=dtype).init(key, jnp.zeros((1, d), dtype))


def _deep_net_apply(params: Params, x_nd: ArrayLike) -> jax.Array:
  """phi_nr = the random net's last hidden layer; r is read from its shape."""
  r = params["params"]["w2"]["kernel"].shape[-1]
  dtype = params["params"]["w2"]["kernel"].dtype
  return RandomNet(r=r, param_dtype=dtype).apply(params, jnp.asarray(x_nd))


_register_builtin("deep_net", FeatureMap(
    init=_deep_net_init, apply=_deep_net_apply, kernel=None, ridge=None,
    description=("random 2-hidden-layer ReLU net: relu(W2 relu(W1 x + b1) + b2), rows of W1 on "
                 f"the unit sphere, width {DEEP_NET_WIDTH}, W2 He-normal, biases N(0, 1); "
                 "f_i = unit i of the last hidden layer (Thm 4.2)")))


# ----------------------------------------------------------------------------------------------
# Coupling features (Section 2; Thm 4.3; docs/theory.md, 'Coupling features and odd
# targets'): f_i(x) = 1[<w_k, x> >= 0] x_j.


def _coupling_init(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> Params:
  """{"w_dr": column i is neuron k = i // d}: ceil(r/d) Xavier-cube neurons, each repeated d times."""
  n_neurons = -(-r // d)
  w_dk = _xavier_cube_dr(key, d, n_neurons, dtype)
  # Repeating the neuron per feature keeps params all-float and lets shapes carry r.
  return {"w_dr": jnp.repeat(w_dk, d, axis=1)[:, :r]}


def _coupling_apply(params: Params, x_nd: ArrayLike) -> jax.Array:
  """phi_nr[:, i] = 1[<w_{i // d}, x> >= 0] x_{i % d}."""
  x_nd = jnp.asarray(x_nd)
  w_dr = params["w_dr"]
  d, r = w_dr.shape
  gate_nr = _matmul(x_nd, w_dr) >= 0
  x_nr = jnp.take(x_nd, jnp.arange(r) % d, axis=1)
  out_dtype = jnp.result_type(x_nd, w_dr)
  return jnp.where(gate_nr, x_nr, 0).astype(out_dtype)


_register_builtin("coupling", FeatureMap(
    init=_coupling_init, apply=_coupling_apply, kernel=None, ridge=None,
    description=("1[<w_k,x> >= 0] x_j, w_k Xavier cube, feature i -> k = i // d, j = i % d "
                 "(Section 2, Thm 4.3)")))


# ----------------------------------------------------------------------------------------------
# Kernel features on sampled points (Thm 4.3) and random Fourier features.


def _kernel_points_init(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> Params:
  """{"points_rd": r points x_i ~ N(0, I_d)}."""
  return {"points_rd": jax.random.normal(key, (r, d), dtype=dtype)}


def _kernel_points_apply(params: Params, x_nd: ArrayLike) -> jax.Array:
  """phi_nr[:, i] = exp(-|x - x_i|^2 / (2d))."""
  x_nd = jnp.asarray(x_nd)
  points_rd = params["points_rd"]
  d = points_rd.shape[1]
  return jnp.exp(-_sq_dists(x_nd, points_rd) / (2 * d))


_register_builtin("kernel_points", FeatureMap(
    init=_kernel_points_init, apply=_kernel_points_apply, kernel=_kernel_points_kernel,
    ridge=None,
    description="Gaussian RBF k(x_i, x) = exp(-|x - x_i|^2/(2d)) at x_i ~ N(0, I_d) (Thm 4.3)"))


def _rff_init(key: jax.Array, d: int, r: int, dtype: DTypeLike) -> Params:
  """{"w_dr": N(0, I/d) columns, "b_r": U[0, 2 pi]}."""
  k_w, k_b = jax.random.split(key)
  w_dr = jax.random.normal(k_w, (d, r), dtype=dtype) / jnp.sqrt(jnp.asarray(d, dtype))
  b_r = jax.random.uniform(k_b, (r,), dtype=dtype, minval=0.0, maxval=2 * math.pi)
  return {"w_dr": w_dr, "b_r": b_r}


def _rff_apply(params: Params, x_nd: ArrayLike) -> jax.Array:
  """phi_nr = cos(x_nd @ w_dr + b_r)."""
  return jnp.cos(_matmul(jnp.asarray(x_nd), params["w_dr"]) + params["b_r"][None, :])


_register_builtin("rff", FeatureMap(
    init=_rff_init, apply=_rff_apply, kernel=_rff_kernel, ridge=None,
    description="random Fourier features cos(<w,x>+b), w ~ N(0, I/d), b ~ U[0, 2 pi]"))
