"""Prop. 4.4: ψ_{w*} is nearly uncorrelated with every feature chosen without w*.

ψ is the triangle sine built from a = 4m + 2 ReLUs (PAPER.md §4.2), w* is uniform
on the sphere of radius R = d. For each feature family, E_{w*}|<f, ψ_{w*}>| over
unit-norm f is measured
- in exact mode for ridge features f = h(<w,x> + b) (h = ReLU or linear): as a 1-D
  integral over ρ = <w, w*>/(‖w‖R) with its density p_d (`exact`), and as an average
  over sampled w* of exact correlations (`exact_sampled`, which underestimates the
  mean at large d, PAPER.md §8 note 10);
- by Monte Carlo over x for any feature map (`monte_carlo`), where its 1/√n noise
  floor allows.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from rfjax import experiments
from rfjax import features
from rfjax import gaussian
from rfjax import psi
from rfjax import sweep
from rfjax import validation

NAME = "psi_correlation"
HIGHEST = jax.lax.Precision.HIGHEST


def _unit_w_star(key: jax.Array, d: int, num: int) -> jax.Array:
  """[num, d] w* uniform on the sphere of radius d."""
  g = jax.random.normal(key, (num, d), jnp.float64)
  return d * g / jnp.linalg.norm(g, axis=1, keepdims=True)


def _draw_keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Keys for the features and the w* draws: the same in exact and Monte Carlo mode."""
  return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


def _exact_seed(key: jax.Array, *, d: int, feature: str, num_features: int,
                num_w_star: int) -> dict[str, jax.Array]:
  """Exact-mode E|<f, ψ_{w*}>|/‖f‖ for one draw of features: ρ-integral and sampled w*."""
  k_feat, k_star = _draw_keys(key)
  pp = psi.psi_params(d)
  fm = features.get(feature)
  form = fm.ridge(fm.init(k_feat, d, num_features))
  w_dr, b_r = form.w_dr.astype(jnp.float64), form.b_r.astype(jnp.float64)
  s_r = jnp.linalg.norm(w_dr, axis=0)
  integral_r = jax.vmap(lambda s, b: psi.mean_abs_correlation(
      s, b, d, pp.R, pp.m, form.activation))(s_r, b_r)
  w_star_kd = _unit_w_star(k_star, d, num_w_star)
  rho_kr = jnp.dot(w_star_kd, w_dr, precision=HIGHEST) / (pp.R * s_r)[None, :]
  corr_kr = jax.vmap(lambda rho_r: jax.vmap(lambda s, b, rho: psi.ridge_correlation(
      s, b, rho, pp.R, pp.m, form.activation))(s_r, b_r, rho_r))(rho_kr)
  norm_r = jnp.sqrt(jax.vmap(lambda w_d, b: gaussian.ridge_target_second(
      w_d, b, form.activation), in_axes=(1, 0))(w_dr, b_r))          # ‖f_i‖
  return dict(exact=jnp.mean(integral_r),
              exact_sampled=jnp.mean(jnp.abs(corr_kr) / norm_r[None, :]))


def _mc_seed(key: jax.Array, *, d: int, feature: str, num_features: int, num_w_star: int,
             n: int, chunk: int) -> dict[str, jax.Array]:
  """Monte Carlo E|<f, ψ_{w*}>|/‖f‖ over n Gaussian inputs, streamed in chunks."""
  (k_feat, k_star), k_x = _draw_keys(key), jax.random.fold_in(key, 2)
  pp = psi.psi_params(d)
  fm = features.get(feature)
  params = fm.init(k_feat, d, num_features)
  w_star_kd = _unit_w_star(k_star, d, num_w_star)

  def body(acc, i):
    x_nd = jax.random.normal(jax.random.fold_in(k_x, i), (chunk, d), jnp.float64)
    phi_nr = fm.apply(params, x_nd).astype(jnp.float64)
    psi_nk = psi.psi(jnp.dot(x_nd, w_star_kd.T, precision=HIGHEST), pp.m)
    cross = jnp.dot(phi_nr.T, psi_nk, precision=HIGHEST)              # [r, k]
    cross2 = jnp.dot((phi_nr**2).T, psi_nk**2, precision=HIGHEST)     # for the s.e.
    return (acc[0] + cross, acc[1] + cross2, acc[2] + jnp.sum(phi_nr**2, axis=0)), None

  num_features_out = fm.apply(params, jnp.zeros((1, d), jnp.float64)).shape[1]
  zeros = (jnp.zeros((num_features_out, num_w_star)), jnp.zeros((num_features_out, num_w_star)),
           jnp.zeros((num_features_out,)))
  (cross, cross2, ff), _ = jax.lax.scan(body, zeros, jnp.arange(n // chunk))
  total = (n // chunk) * chunk
  norm_r = jnp.sqrt(ff / total)
  corr = cross / total / norm_r[:, None]
  stderr = jnp.sqrt(jnp.maximum(cross2 / total - (cross / total) ** 2, 0.0) / total)
  return dict(monte_carlo=jnp.mean(jnp.abs(corr)),
              stderr=jnp.mean(stderr / norm_r[:, None]))


def psi_checks(d: int) -> dict[str, float]:
  """‖ψ_{w*}‖² and max |ψ − its ReLU sum| on a fine grid over [−A−2, A+2]."""
  pp = psi.psi_params(d)
  z = jnp.linspace(-pp.A - 2.0, pp.A + 2.0, 20001, dtype=jnp.float64)
  err = float(jnp.max(jnp.abs(psi.psi(z, pp.m) - psi.psi_relu_sum(z, pp.m))))
  return dict(psi_norm_sq=float(psi.psi_norm_sq(pp.R, pp.m)), psi_sum_max_err=err,
              num_relus=4 * pp.m + 2, R=float(pp.R), A=float(pp.A))


def validate(config: mlc.ConfigDict) -> None:
  validation.positive_ints("ds", config.ds, minimum=2)
  validation.positive_ints("mc_ds", config.mc_ds, minimum=2)
  validation.one_of("exact_features", config.exact_features, features.names())
  for name in config.exact_features:
    fm = features.get(name)
    if fm.ridge is None:
      raise validation.ConfigError(
          "exact_features", f"{name!r} has no ridge form; exact mode needs one (use mc_features)")
  validation.one_of("mc_features", config.mc_features, features.names())
  validation.positive_ints("num_seeds", config.num_seeds)
  validation.positive_ints("num_features", config.num_features)
  validation.positive_ints("num_w_star", config.num_w_star)
  validation.positive_ints("mc_n", config.mc_n)
  validation.positive_ints("mc_chunk", config.mc_chunk)
  if config.mc_n < config.mc_chunk:
    raise validation.ConfigError("mc_n", f"must be >= mc_chunk = {config.mc_chunk}")


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  grid = [dict(d=d, feature=f, mode="exact") for d in config.ds for f in config.exact_features]
  grid += [dict(d=d, feature=f, mode="monte_carlo")
           for d in config.mc_ds for f in config.mc_features]
  return grid


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array) -> list[dict]:
  d, feature = cell["d"], cell["feature"]
  keys = sweep.seed_keys(key, config.num_seeds)
  base = dict(d=d, feature=feature, **psi_checks(d))
  rows = []
  if cell["mode"] == "exact":
    fn = functools.partial(_exact_seed, d=d, feature=feature,
                           num_features=config.num_features, num_w_star=config.num_w_star)
    # No outer jit: psi's jitted kernels compile once per (d, activation) and are reused.
    out = sweep.over_seeds(fn, keys, jit=False)
    for s in range(config.num_seeds):
      rows.append(dict(base, seed=s, mode="exact", mean_abs_corr=float(out["exact"][s]),
                       num_features=config.num_features, w_star="rho_integral"))
      rows.append(dict(base, seed=s, mode="exact_sampled",
                       mean_abs_corr=float(out["exact_sampled"][s]),
                       num_features=config.num_features, w_star=config.num_w_star))
  else:
    fn = functools.partial(_mc_seed, d=d, feature=feature, num_features=config.num_features,
                           num_w_star=config.num_w_star, n=config.mc_n, chunk=config.mc_chunk)
    out = sweep.over_seeds(fn, keys)
    for s in range(config.num_seeds):
      rows.append(dict(base, seed=s, mode="monte_carlo",
                       mean_abs_corr=float(out["monte_carlo"][s]),
                       mc_stderr=float(out["stderr"][s]), mc_n=config.mc_n,
                       num_features=config.num_features, w_star=config.num_w_star))
  return rows


def _mean_by(rows, mode, feature):
  by_d: dict[int, list[float]] = {}
  for r in rows:
    if r["mode"] == mode and r["feature"] == feature:
      by_d.setdefault(r["d"], []).append(float(r["mean_abs_corr"]))
  return {d: float(np.mean(v)) for d, v in sorted(by_d.items())}


def decay_rate(ds: np.ndarray, values: np.ndarray) -> float:
  """c in log E|corr| ≈ a − c d, by least squares over the given d."""
  return float(-np.polyfit(ds, np.log(values), 1)[0])


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """ψ = its ReLU sum, ‖ψ‖² ≥ 1/6, and exact correlations falling exponentially in d."""
  by_d = {r["d"]: r for r in rows}
  sum_err = max(float(r["psi_sum_max_err"]) for r in by_d.values())
  norm_min = min(float(r["psi_norm_sq"]) for r in by_d.values())
  rates, smallest, per_feature = {}, float("inf"), {}
  for f in config.exact_features:
    curve = _mean_by(rows, "exact", f)
    ds = np.array(list(curve), float)
    vals = np.array(list(curve.values()))
    ok = vals > 0
    rates[f] = decay_rate(ds[ok], vals[ok]) if ok.sum() > 1 else float("nan")
    smallest = min(smallest, float(vals[ok].min()) if ok.any() else float("inf"))
    per_feature[f] = dict(exact=curve, exact_sampled=_mean_by(rows, "exact_sampled", f))
  mc = {}
  for f in config.mc_features:
    curve = _mean_by(rows, "monte_carlo", f)
    se = {}
    for r in rows:
      if r["mode"] == "monte_carlo" and r["feature"] == f:
        se.setdefault(r["d"], []).append(float(r["mc_stderr"]))
    mc[f] = {d: dict(mean_abs_corr=v, stderr=float(np.mean(se[d])),
                     resolved=bool(v > 3 * np.mean(se[d]))) for d, v in curve.items()}
  decays = all(c > 0 for c in rates.values()) and bool(rates)
  holds = sum_err <= 1e-12 and norm_min >= 1 / 6 and decays and smallest <= 1e-12
  rate_text = ", ".join(f"{f}: c = {c:.2f}" for f, c in rates.items())
  return dict(
      claim=("Prop. 4.4: ψ_{w*} is a sum of a = 4m+2 ReLUs with ‖ψ_{w*}‖² ≥ 1/6, and "
             "E_{w*}|<f, ψ_{w*}>| ≤ √(20‖f‖²e^{−cd}) for every f chosen without w*."),
      prediction=("ψ equals its ReLU sum to 1e-12; ‖ψ‖² ≥ 1/6; log E|<f,ψ>| falls at least "
                  "linearly in d (rate c > 0), resolved by exact mode below 1e-12"),
      measured=(f"max |ψ − ReLU sum| = {sum_err:.1e}; min ‖ψ‖² = {norm_min:.4f}; "
                f"decay rates {rate_text}; smallest exact E|corr| = {smallest:.2e}"),
      holds=bool(holds),
      psi_sum_max_err=sum_err,
      min_psi_norm_sq=norm_min,
      decay_rates=rates,
      smallest_exact=smallest,
      exact=per_feature,
      monte_carlo=mc,
  )


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    claim="Prop. 4.4 (ψ is nearly uncorrelated with random features)"))
