"""The questions a researcher asks of a feature map, one call each (usable from a notebook).

  import jax; jax.config.update("jax_enable_x64", True)
  from rfjax import api
  api.psi_correlation("relu_sphere", d=6, key=jax.random.key(0))     # exact (ρ-integral)
  api.psi_correlation("square_sphere", d=3, key=jax.random.key(0))   # Monte Carlo, with s.e.
  api.fit_curve("relu_biased", d=3, rs=(64, 128), rBs=(1e1, 1e2, 1e3), key=jax.random.key(0))
  api.kernel_check("relu_gauss", d=4, key=jax.random.key(0))

Every call needs float64 (jax_enable_x64) and refuses to run without it, in one line naming the
fix. A feature map runs in exact mode when its ridge form's activation record has exact mode
(closed forms, or float64 quadrature at its kinks; `feature_mode`), in sample (Monte Carlo)
mode otherwise; each answer says which, and how precise it is.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import boxqp
from rfjax import distributions
from rfjax import features
from rfjax import gaussian
from rfjax import psi
from rfjax import solvers
from rfjax import targets

_HI = jax.lax.Precision.HIGHEST
MODES = ("auto", "exact", "sample")
# Absolute error of one quadrature ψ-correlation per unit ‖f‖ (measured against the ReLU
# closed form at d = 3 and 8 in tests/test_exact_mode.py: ≤ 2e-16); values below it are
# unresolved.
QUADRATURE_ATOL = 1e-15
# The relative rounding unit of float64 closed forms.
CLOSED_FORM_RTOL = float(np.finfo(np.float64).eps)


def _fm(feature: features.FeatureMap | str) -> features.FeatureMap:
  return features.get(feature) if isinstance(feature, str) else feature


def init_float64(feature: features.FeatureMap | str, key: jax.Array, d: int, r: int) -> Any:
  """fm.init(key, d, r) with its floating leaves in float64 (maps without a dtype argument
  sample in JAX's default float, float64 when x64 is on)."""
  params = _fm(feature).init(key, d, r)
  return jax.tree.map(lambda a: a.astype(jnp.float64)
                      if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, params)


def ridge_activation(feature: features.FeatureMap | str) -> Any:
  """The activation record of a ridge family's features (from a one-feature draw), or None
  when the map has no ridge form or its activation has no exact mode."""
  fm = _fm(feature)
  if fm.ridge is None:
    return None
  form = fm.ridge(fm.init(jax.random.key(0), 2, 1))
  try:
    return gaussian.activation_record(form.activation)
  except (KeyError, ValueError):
    return None


def feature_mode(feature: features.FeatureMap | str) -> tuple[str, str]:
  """(mode, method): ("exact", "closed_form" | "quadrature") for a ridge family whose
  activation has exact mode, ("sample", "monte_carlo") otherwise."""
  act = ridge_activation(feature)
  if act is None:
    return "sample", "monte_carlo"
  return "exact", gaussian.exact_method(act)


def _resolve_mode(feature, mode: str) -> tuple[str, str]:
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
  auto, method = feature_mode(feature)
  if mode == "exact" and auto != "exact":
    name = feature if isinstance(feature, str) else "this feature map"
    raise ValueError(f"{name} has no exact mode (no ridge form with an exact-mode activation); "
                     "use mode='sample'")
  if mode == "sample":
    return "sample", "monte_carlo"
  return auto, method


def w_star_sphere(key: jax.Array, d: int, num: int) -> jax.Array:
  """[num, d] w* uniform on the sphere of radius R = d (float64)."""
  return distributions.unit_vectors(key, (num, d), radius=d, dtype=jnp.float64,
                                    guard_zero=False)


# ----------------------------------------------------------------------------------------------
# ψ-correlation.


class PsiCorrelation(NamedTuple):
  """E_{w*}|<f, ψ_{w*}>| / ‖f‖ of drawn features f (docs/theory.md, 'ψ and Prop. 4.4')."""
  mode: str                  # "exact" or "sample"
  method: str                # "closed_form", "quadrature" or "monte_carlo"
  mean_abs_corr: float       # the mean over the features
  per_feature: np.ndarray    # [r]: exact ρ-integrals, or Monte Carlo means over sampled w*
  stderr: float              # Monte Carlo: mean per-pair standard error; exact: 0
  precision: float           # absolute: the resolution floor of the value (see `resolved`)
  resolved: bool             # value above its precision (3 s.e. in sample mode)


def psi_correlation_exact(w_dr: jax.Array, b_r: jax.Array, d: int, activation: Any
                          ) -> jax.Array:
  """ρ-integral E_{w*}|<f_i, ψ_{w*}>| / ‖f_i‖ per ridge feature f_i = σ(<w_i,x> + b_i), [r]."""
  gaussian.require_x64("api.psi_correlation_exact")
  pp = psi.psi_params(d)
  act = gaussian.activation_record(activation)
  s_r = jnp.linalg.norm(w_dr, axis=0)
  return jax.vmap(lambda s, b: psi.mean_abs_correlation(s, b, d, pp.R, pp.m, act))(s_r, b_r)


def psi_correlation_mc(key: jax.Array, *, d: int, feature: features.FeatureMap | str,
                       num_features: int, num_w_star: int, n: int, chunk: int
                       ) -> dict[str, jax.Array]:
  """Monte Carlo E|<f, ψ_{w*}>|/‖f‖ over n Gaussian inputs, streamed in chunks.

  Draws: features from fold_in(key, 0), w* from fold_in(key, 1), inputs from fold_in(key, 2).
  Returns monte_carlo (mean over live features and w* of |corr|), stderr (mean per-pair
  standard error of corr), num_dead (features that vanish on every sample, left out), and
  corr, corr_stderr [r', k] (the per-pair estimates, 0 for dead features).
  """
  k_feat, k_star, k_x = (jax.random.fold_in(key, i) for i in range(3))
  pp = psi.psi_params(d)
  fm = _fm(feature)
  params = fm.init(k_feat, d, num_features)
  w_star_kd = w_star_sphere(k_star, d, num_w_star)

  def body(acc, i):
    x_nd = jax.random.normal(jax.random.fold_in(k_x, i), (chunk, d), jnp.float64)
    phi_nr = fm.apply(params, x_nd).astype(jnp.float64)
    psi_nk = psi.psi(jnp.dot(x_nd, w_star_kd.T, precision=_HI), pp.m)
    cross = jnp.dot(phi_nr.T, psi_nk, precision=_HI)              # [r, k]
    cross2 = jnp.dot((phi_nr**2).T, psi_nk**2, precision=_HI)     # for the s.e.
    return (acc[0] + cross, acc[1] + cross2, acc[2] + jnp.sum(phi_nr**2, axis=0)), None

  num_features_out = fm.apply(params, jnp.zeros((1, d), jnp.float64)).shape[1]
  zeros = (jnp.zeros((num_features_out, num_w_star)), jnp.zeros((num_features_out, num_w_star)),
           jnp.zeros((num_features_out,)))
  (cross, cross2, ff), _ = jax.lax.scan(body, zeros, jnp.arange(n // chunk))
  total = (n // chunk) * chunk
  # A feature that vanishes on every sample (a dead ReLU unit) is f = 0: it has no unit-norm
  # version, so it is left out of the means (and counted).
  alive_r = ff > 0
  norm_r = jnp.sqrt(jnp.where(alive_r, ff, 1.0) / total)
  corr = jnp.where(alive_r[:, None], cross / total / norm_r[:, None], 0.0)
  stderr = jnp.sqrt(jnp.maximum(cross2 / total - (cross / total) ** 2, 0.0) / total)
  stderr = jnp.where(alive_r[:, None], stderr / norm_r[:, None], 0.0)
  num_pairs = jnp.sum(alive_r) * num_w_star
  return dict(monte_carlo=jnp.sum(jnp.abs(corr)) / num_pairs, stderr=jnp.sum(stderr) / num_pairs,
              num_dead=jnp.sum(~alive_r), corr=corr, corr_stderr=stderr)


def psi_correlation(feature: features.FeatureMap | str, d: int, *, key: jax.Array,
                    num_features: int = 4, num_w_star: int = 64, mode: str = "auto",
                    n: int = 2**16, chunk: int = 2**12, resolve_factor: float = 3.0
                    ) -> PsiCorrelation:
  """E_{w*}|<f, ψ_{w*}>| / ‖f‖ for `num_features` features drawn with `key`.

  Exact mode: the mean over w* uniform on the sphere of radius d as a ρ-integral (resolved to
  1e-89 in closed form; to QUADRATURE_ATOL by quadrature). Sample mode: over n inputs and
  `num_w_star` sampled w*, with its standard error; resolved above resolve_factor s.e.
  """
  gaussian.require_x64("api.psi_correlation")
  if d < 2:
    raise ValueError(f"d must be >= 2, got {d}")
  mode, method = _resolve_mode(feature, mode)
  fm = _fm(feature)
  if mode == "exact":
    form = fm.ridge(fm.init(jax.random.fold_in(key, 0), d, num_features))
    vals = np.asarray(psi_correlation_exact(jnp.asarray(form.w_dr, jnp.float64),
                                            jnp.asarray(form.b_r, jnp.float64), d,
                                            form.activation))
    value = float(np.mean(vals))
    prec = QUADRATURE_ATOL if method == "quadrature" else CLOSED_FORM_RTOL * value
    return PsiCorrelation(mode, method, value, vals, 0.0, prec, bool(value > prec))
  out = psi_correlation_mc(key, d=d, feature=fm, num_features=num_features,
                           num_w_star=num_w_star, n=n, chunk=min(chunk, n))
  value, se = float(out["monte_carlo"]), float(out["stderr"])
  per = np.asarray(jnp.mean(jnp.abs(out["corr"]), axis=1))
  return PsiCorrelation(mode, method, value, per, se, resolve_factor * se,
                        bool(value > resolve_factor * se))


# ----------------------------------------------------------------------------------------------
# Moments and the certified fit curve.


def ridge_moments(form: features.RidgeForm, target: targets.Target) -> solvers.Moments:
  """Exact (float64) moments of ridge features against one target: Gram, cross, means."""
  gaussian.require_x64("api.ridge_moments")
  form = form._replace(w_dr=jnp.asarray(form.w_dr, jnp.float64),
                       b_r=jnp.asarray(form.b_r, jnp.float64))
  return solvers.exact_moments(form, target)


def moments(feature: features.FeatureMap | str, params: Any, target: targets.Target, *,
            d: int, key: jax.Array, mode: str = "auto", n: int = 2**16, chunk: int = 2**12
            ) -> tuple[solvers.Moments, str, str]:
  """(Moments, mode, method) of the features `params` of `feature` against `target`:
  exact where the map allows (or mode = "exact"), else Monte Carlo over n inputs from `key`."""
  gaussian.require_x64("api.moments")
  mode, method = _resolve_mode(feature, mode)
  fm = _fm(feature)
  if mode == "exact":
    return ridge_moments(fm.ridge(params), target), mode, method
  m = solvers.sample_moments(fm.apply, params, target.fn, key, n=n, chunk=min(chunk, n), d=d,
                             dtype=jnp.float64)
  return m, mode, method


def fit_curve(feature: features.FeatureMap | str, d: int, rs: tuple[int, ...],
              rBs: tuple[float, ...], *, key: jax.Array, target: targets.Target | None = None,
              mode: str = "auto", n: int = 2**16, chunk: int = 2**12) -> list[dict[str, Any]]:
  """The certified best-fit error against r and r·max|u_i|: one row per (r, r·B).

  For each width r, r features are drawn (fold_in of the key by r) and fitted to `target`
  (default ψ_{w*} for one w* on the sphere of radius d) with |u_i| ≤ B = rB / r and a free
  bias, by rfjax.boxqp: each row holds the error reached, its certified lower bound and the gap
  (docs/theory.md, 'Certified box fit'), relative to E y², and the least-squares error (B = ∞).
  In sample mode the errors are those of the Monte Carlo moments (in-sample).
  """
  gaussian.require_x64("api.fit_curve")
  k_star, key = jax.random.split(key)
  if target is None:
    pp = psi.psi_params(d)
    target = targets.psi_target(w_star_sphere(k_star, d, 1)[0], pp.m, pp.R)
  fm = _fm(feature)
  rows = []
  for r in rs:
    k_feat, k_x = jax.random.split(jax.random.fold_in(key, int(r)))
    params = fm.init(k_feat, d, int(r))
    m, used, method = moments(fm, params, target, d=d, key=k_x, mode=mode, n=n, chunk=chunk)
    p = boxqp.problem(m)
    ls = boxqp.least_squares(p)
    for rB in rBs:
      B = float(rB) / r
      sol = ls if ls.B <= B else boxqp.solve(p, B, state_r=boxqp._state_from(ls.u_r, B))
      rows.append(dict(r=int(r), rB=float(rB), mode=used, method=method,
                       relative_error=sol.error / p.yy, relative_lower=sol.lower / p.yy,
                       relative_gap=sol.gap / p.yy, ls_relative_error=ls.error / p.yy,
                       ls_rB=ls.B * r, mc_n=n if used == "sample" else 0))
  return rows


# ----------------------------------------------------------------------------------------------
# Kernel against Monte Carlo.


def kernel_check(feature: features.FeatureMap | str, d: int, *, key: jax.Array,
                 num_points: int = 4, num_features: int = 20_000) -> dict[str, Any]:
  """The closed-form kernel at num_points Gaussian points against the Monte Carlo mean of
  f(x) f(y) over num_features own features: kernel, monte_carlo, stderr [n, n] and max_z."""
  gaussian.require_x64("api.kernel_check")
  fm = _fm(feature)
  if fm.kernel is None:
    raise ValueError("the feature map has no closed-form kernel")
  k_x, k_f = jax.random.split(key)
  x = jax.random.normal(k_x, (num_points, d), jnp.float64)
  mc, se = features.kernel_monte_carlo(fm, x, k_f, num_features)
  k = np.asarray(fm.kernel(x, x))
  return dict(kernel=k, monte_carlo=mc, stderr=se,
              max_z=float(np.max(np.abs(mc - k) / np.maximum(se, 1e-300))))
