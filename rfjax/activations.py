"""Activations σ as data: the function, its Lipschitz constant, |σ(0)|, Taylor coefficients.

Section 3 of the paper (PAPER.md §3) needs σ analytic with Taylor coefficients a_n; the
Lipschitz constant L is taken on [-2, 2] because SGD keeps rows ‖w_i‖ ≤ 2 and ‖x‖ ≤ 1
(PAPER.md §3.2). `lipschitz_on(act, radius)` gives L on another interval (Thm 3.3 uses
[-1, 1]). Registered: relu (not analytic), exp, poly3 (= the degree-3 truncation of exp),
sincos (= sin z + cos z: bounded, every a_n = ±1/n! nonzero), tanh (odd a_n only), tanh3
(= z − z³/3, tanh's cubic Taylor polynomial).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import registry
from rfjax import validation


class Activation(NamedTuple):
  """An elementwise σ with the constants Section 3 needs."""
  name: str
  fn: Callable[[jax.Array], jax.Array]          # elementwise σ, jnp, dtype-preserving
  lipschitz: float                              # L on [-2, 2]
  sigma0: float                                 # |σ(0)|
  taylor: Callable[[int], np.ndarray] | None    # n -> float64 a_0..a_n (None: not analytic)
  degree: int | None = None                     # polynomial σ: its degree (Thm 3.4 exact)


ACTIVATIONS: registry.Registry[Activation] = registry.Registry("activation")


def register(name: str, act: Activation) -> Activation:
  return ACTIVATIONS.register(name, act)


def get(name: str) -> Activation:
  return ACTIVATIONS.get(name)


def names() -> list[str]:
  return ACTIVATIONS.names()


def analytic_names() -> list[str]:
  """Registered activations with a Taylor series (usable by Section 3 code)."""
  return [n for n in names() if get(n).taylor is not None]


def require_analytic(name: str, field: str = "sigma") -> Activation:
  """The activation `name`, or ConfigError(field) if unknown or not analytic."""
  if name not in ACTIVATIONS:
    raise validation.ConfigError(field, f"unknown activation {name!r}; known: {names()}")
  act = get(name)
  if act.taylor is None:
    raise validation.ConfigError(
        field, f"activation {name!r} is not analytic (no Taylor series); Section 3 "
        f"(Thms 3.1, 3.4) needs an analytic σ, one of {analytic_names()}")
  return act


def lipschitz_on(act: Activation, radius: float, num: int = 20001) -> float:
  """max |σ'| on [-radius, radius] from autodiff on a fine grid (float64 if enabled)."""
  z = jnp.linspace(-radius, radius, num)
  grad = jax.vmap(jax.grad(lambda t: act.fn(t)))(z)
  return float(jnp.max(jnp.abs(grad)))


def supported_degrees(act: Activation, k: int, tol: float = 0.0) -> list[int]:
  """Degrees n ≤ k with a_n ≠ 0 (the monomial degrees σ's Taylor series supports)."""
  a = taylor_or_raise(act, k)
  return [n for n in range(k + 1) if abs(a[n]) > tol]


def coefficient_constant(act: Activation, k: int) -> float:
  """A_k = max{1/|a_n| : n ≤ k, a_n ≠ 0} (PAPER.md §3.1)."""
  a = taylor_or_raise(act, k)
  return float(max(1.0 / abs(a[n]) for n in supported_degrees(act, k)))


def coefficient_zeta(act: Activation, k: int) -> float:
  """The largest ζ ≤ 1 with |a_n| ≥ ζ^n for every 1 ≤ n ≤ k with a_n ≠ 0 (and |a_0| ≥ 1 ignored)."""
  a = taylor_or_raise(act, k)
  zs = [abs(a[n]) ** (1.0 / n) for n in supported_degrees(act, k) if n >= 1]
  return float(min([1.0] + zs))


def taylor_or_raise(act: Activation, n: int) -> np.ndarray:
  """a_0..a_n of `act`, or ValueError when σ is not analytic. float64 [n + 1]."""
  if act.taylor is None:
    raise ValueError(f"activation {act.name!r} is not analytic")
  return np.asarray(act.taylor(n), np.float64)


def _horner(coeffs: Sequence[float], z: jax.Array) -> jax.Array:
  out = jnp.zeros_like(z) + jnp.asarray(coeffs[-1], z.dtype)
  for c in coeffs[-2::-1]:
    out = out * z + jnp.asarray(c, z.dtype)
  return out


def _poly_lipschitz(coeffs: np.ndarray, radius: float) -> float:
  """max |p'| on [-radius, radius]: endpoints and the real critical points of p'."""
  dp = np.polynomial.Polynomial(coeffs).deriv()
  cands = [-radius, radius]
  if dp.degree() >= 1:
    cands += [float(t.real) for t in dp.deriv().roots()
              if abs(t.imag) < 1e-12 and abs(t.real) <= radius]
  return float(max(abs(dp(t)) for t in cands)) if len(coeffs) > 1 else 0.0


def polynomial(coeffs: Sequence[float], name: str | None = None) -> Activation:
  """σ(z) = Σ_n c_n z^n (trailing zeros trimmed); Thm 3.4 is exact for it."""
  c = np.trim_zeros(np.asarray(coeffs, np.float64), "b")
  if c.size == 0:
    c = np.zeros(1)
  deg = int(c.size - 1)
  cs = tuple(float(v) for v in c)

  def taylor(n: int) -> np.ndarray:
    out = np.zeros(n + 1)
    m = min(n, deg) + 1
    out[:m] = c[:m]
    return out

  return Activation(name=name or f"poly{deg}", fn=lambda z: _horner(cs, jnp.asarray(z)),
                    lipschitz=_poly_lipschitz(c, 2.0), sigma0=abs(float(c[0])),
                    taylor=taylor, degree=deg)


def _exp_taylor(n: int) -> np.ndarray:
  return np.array([1.0 / math.factorial(i) for i in range(n + 1)])


def _sincos_taylor(n: int) -> np.ndarray:
  """sin z + cos z = Σ s_n z^n / n!, signs + + − − + + …"""
  signs = [1.0, 1.0, -1.0, -1.0]
  return np.array([signs[i % 4] / math.factorial(i) for i in range(n + 1)])


def _tanh_taylor(n: int) -> np.ndarray:
  """From t' = 1 − t², t(0) = 0: (m+1) c_{m+1} = [m = 0] − Σ_{i+j=m} c_i c_j."""
  c = np.zeros(n + 1)
  for m in range(n):
    conv = sum(c[i] * c[m - i] for i in range(m + 1))
    c[m + 1] = ((1.0 if m == 0 else 0.0) - conv) / (m + 1)
  return c


register("relu", Activation("relu", jax.nn.relu, lipschitz=1.0, sigma0=0.0, taylor=None))
register("exp", Activation("exp", jnp.exp, lipschitz=math.exp(2.0), sigma0=1.0,
                           taylor=_exp_taylor))
register("poly3", polynomial([1.0, 1.0, 0.5, 1.0 / 6.0], name="poly3"))
register("sincos", Activation("sincos", lambda z: jnp.sin(z) + jnp.cos(z),
                              lipschitz=math.sqrt(2.0), sigma0=1.0, taylor=_sincos_taylor))
# tanh's cubic Taylor polynomial: a_0 = a_2 = 0, so constants and degree-2 monomials have no
# integral representation over it (Thm 3.4's coefficient hypothesis fails for them).
register("tanh3", polynomial([0.0, 1.0, 0.0, -1.0 / 3.0], name="tanh3"))
register("tanh", Activation("tanh", jnp.tanh, lipschitz=1.0, sigma0=0.0, taylor=_tanh_taylor))
