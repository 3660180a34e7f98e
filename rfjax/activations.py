"""Activations σ as data: the function, its constants and its exact Gaussian moments.

Section 3 of the paper needs σ analytic with Taylor coefficients a_n; the Lipschitz constant L
is taken on [-2, 2] because SGD keeps rows ‖w_i‖ ≤ 2 and ‖x‖ ≤ 1 (Thms. 3.1, 3.2).
`lipschitz_on(act, radius)` gives L on another interval (Thm 3.3 uses [-1, 1]).

Exact mode (Section 4) is open: a record's `gaussian` field (GaussianRules) holds the closed
forms it has for E σ(sZ + b), E σ(sZ + b)², E[Z σ(sZ + b)], the cross moment with itself and
the correlation with ψ, and the kinks of σ; whatever it lacks is computed by float64 split
quadrature at those kinks (docs/theory.md, 'Exact mode for any activation'). rfjax.gaussian,
rfjax.psi and rfjax.targets dispatch on the record, never on a name, so registering an
activation with `gaussian=GaussianRules(kinks=...)` opens every exact-mode computation to it.

Registered: relu (closed forms), linear (affine: closed forms by Stein's lemma), step 1[z ≥ 0]
(closed forms but ψ, the coupling features' building block), exp, poly3 (= the degree-3
truncation of exp), sincos (= sin z + cos z: bounded, every a_n = ±1/n! nonzero), tanh (odd a_n
only; exact mode by quadrature), tanh3 (= z − z³/3, tanh's cubic Taylor polynomial).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import gaussian
from rfjax import psi
from rfjax import registry
from rfjax import validation

Moment = Callable[[jax.Array, jax.Array], jax.Array]


class GaussianRules(NamedTuple):
  """What a record knows of σ(sZ + b), Z ~ N(0, 1), s > 0, for exact mode.

  Every closed form is optional: a None field is computed by float64 split quadrature, with
  panels split at `kinks` (the points where σ is not smooth). All take arrays that broadcast.
  """
  kinks: tuple[float, ...] = ()
  mean: Moment | None = None                     # (s, b) -> E σ(sZ + b)
  second: Moment | None = None                   # (s, b) -> E σ(sZ + b)²
  stein: Moment | None = None                    # (s, b) -> E[Z σ(sZ + b)]
  cross: Callable[..., jax.Array] | None = None  # (sx, b, sy, c, ρ) -> E σ(sx U + b) σ(sy V + c)
  psi_corr: Callable[..., jax.Array] | None = None  # (s, b, ρ, q, R, m, branch) -> E σ(sV+b) ψ(RU)
  affine: bool = False                           # σ(z) = z: any cross moment by Stein's lemma


class Activation(NamedTuple):
  """An elementwise σ with the constants Section 3 needs and its exact Gaussian moments."""
  name: str
  fn: Callable[[jax.Array], jax.Array]          # elementwise σ, jnp, dtype-preserving
  lipschitz: float                              # L on [-2, 2] (inf: not Lipschitz)
  sigma0: float                                 # |σ(0)|
  taylor: Callable[[int], np.ndarray] | None    # n -> float64 a_0..a_n (None: not analytic)
  degree: int | None = None                     # polynomial σ: its degree (Thm 3.4 exact)
  gaussian: GaussianRules | None = None         # exact mode (None: sample mode only)


ACTIVATIONS: registry.Registry[Activation] = registry.Registry("activation")


def register(name: str, act: Activation) -> Activation:
  """Registers `act` under `name` (a name registered again is replaced, with a warning)."""
  if not isinstance(act, Activation):
    raise TypeError(f"activation {name!r} must be an Activation, got {type(act).__name__}")
  return ACTIVATIONS.register(name, act)


def get(name: str) -> Activation:
  return ACTIVATIONS.get(name)


def names() -> list[str]:
  return ACTIVATIONS.names()


def exact_names() -> list[str]:
  """Registered activations with exact mode (closed forms or quadrature)."""
  return [n for n in names() if get(n).gaussian is not None]


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
  """A_k = max{1/|a_n| : n ≤ k, a_n ≠ 0} (the coefficient constant of Thm. 3.1)."""
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


def _step(z: jax.Array) -> jax.Array:
  """1[z ≥ 0], in z's dtype."""
  z = jnp.asarray(z)
  return (z >= 0).astype(z.dtype)


RELU_RULES = GaussianRules(
    kinks=(0.0,), mean=gaussian.relu_gauss_mean, second=gaussian.relu_gauss_second,
    stein=gaussian._stein_relu, cross=gaussian.relu_relu, psi_corr=psi.relu_psi_corr)
LINEAR_RULES = GaussianRules(
    mean=lambda s, b: jnp.broadcast_to(b, jnp.broadcast_shapes(jnp.shape(s), jnp.shape(b))),
    second=lambda s, b: s * s + b * b,
    stein=lambda s, b: jnp.broadcast_to(s, jnp.broadcast_shapes(jnp.shape(s), jnp.shape(b))),
    cross=lambda sx, b, sy, c, rho: sx * sy * rho + b * c,
    psi_corr=psi.linear_psi_corr, affine=True)
# E 1[sZ + b ≥ 0] = E 1[...]² = Φ(b/s); E[Z 1[sZ + b ≥ 0]] = φ(b/s); the cross moment is the
# bivariate normal CDF Φ2(b/sx, c/sy; ρ). Its ψ-correlation is integrated (split quadrature).
STEP_RULES = GaussianRules(
    kinks=(0.0,), mean=lambda s, b: gaussian.norm_cdf(b / s),
    second=lambda s, b: gaussian.norm_cdf(b / s), stein=lambda s, b: gaussian.norm_pdf(b / s),
    cross=lambda sx, b, sy, c, rho: gaussian.bvn_cdf(b / sx, c / sy, rho))
QUADRATURE = GaussianRules()      # a smooth σ without closed forms: every moment integrated

register("relu", Activation("relu", jax.nn.relu, lipschitz=1.0, sigma0=0.0, taylor=None,
                            gaussian=RELU_RULES))
register("linear", polynomial([0.0, 1.0], name="linear")._replace(gaussian=LINEAR_RULES))
register("step", Activation("step", _step, lipschitz=math.inf, sigma0=1.0, taylor=None,
                            gaussian=STEP_RULES))
register("exp", Activation("exp", jnp.exp, lipschitz=math.exp(2.0), sigma0=1.0,
                           taylor=_exp_taylor))
register("poly3", polynomial([1.0, 1.0, 0.5, 1.0 / 6.0], name="poly3"))
register("sincos", Activation("sincos", lambda z: jnp.sin(z) + jnp.cos(z),
                              lipschitz=math.sqrt(2.0), sigma0=1.0, taylor=_sincos_taylor))
# tanh's cubic Taylor polynomial: a_0 = a_2 = 0, so constants and degree-2 monomials have no
# integral representation over it (Thm 3.4's coefficient hypothesis fails for them).
register("tanh3", polynomial([0.0, 1.0, 0.0, -1.0 / 3.0], name="tanh3"))
register("tanh", Activation("tanh", jnp.tanh, lipschitz=1.0, sigma0=0.0, taylor=_tanh_taylor,
                            gaussian=QUADRATURE))
