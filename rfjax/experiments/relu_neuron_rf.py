"""Thms. 4.2 and 4.3: fitting ψ_{w*} (or the hard neuron) with r random features
needs r·max|u_i| exponential in d.

For each (d, r, feature family, target) the box-bounded fit
  min_u E(Σ u_i f_i(x) + u_0 − y)²  s.t. |u_i| ≤ B
is solved over a grid of B, from population moments: exact Gaussian expectations
for ridge features (PAPER.md §5 items 3–5), streamed Monte Carlo for the rest
(fitted on one sample, scored on an independent one). Read off: the smallest r·B
reaching error ε (1/6 on ψ, 1/50 on the rescaled neuron), or "not reached" with the
best error; the Frank–Wolfe gap certifies where the constrained minimum stays above ε.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from rfjax import experiments
from rfjax import features
from rfjax import psi
from rfjax import results
from rfjax import solvers
from rfjax import sweep
from rfjax import targets
from rfjax import validation

NAME = "relu_neuron_rf"
TARGETS = ("psi", "neuron")


def make_target(kind: str, w_star_d: jax.Array, d: int, kink: float) -> targets.Target:
  """ψ_{w*} (‖w*‖ = d) or the rescaled neuron a[<w*,x> − c_j]_+ with c_j ≈ kink·d."""
  pp = psi.psi_params(d)
  if kind == "psi":
    return targets.psi_target(w_star_d, pp.m)
  _, _, offsets = psi.relu_decomposition(pp.m)
  j = int(min(range(len(offsets)), key=lambda i: (abs(offsets[i] - kink * pp.R),
                                                  abs(offsets[i]))))
  return targets.hard_neuron(w_star_d, pp.m, j)


def _moments(key: jax.Array, *, d: int, r: int, feature: str, target: str, kink: float,
             n: int, chunk: int) -> tuple[solvers.Moments, solvers.Moments]:
  """(fit moments, scoring moments): the same exact moments twice, or two MC samples."""
  k_feat, k_star, k_fit, k_score = jax.random.split(key, 4)
  g = jax.random.normal(k_star, (d,), jnp.float64)
  w_star = d * g / jnp.linalg.norm(g)
  tgt = make_target(target, w_star, d, kink)
  fm = features.get(feature)
  params = fm.init(k_feat, d, r)
  if fm.ridge is not None and n == 0:
    form = fm.ridge(params)
    form = form._replace(w_dr=form.w_dr.astype(jnp.float64), b_r=form.b_r.astype(jnp.float64))
    m = solvers.exact_moments(form, tgt)
    return m, m
  sample = functools.partial(solvers.sample_moments, fm.apply, params, tgt.fn, n=n,
                             chunk=chunk, d=d, dtype=jnp.float64)
  return sample(k_fit), sample(k_score)


def _fit_seed(key: jax.Array, B_grid: jax.Array, *, d: int, r: int, feature: str,
              target: str, kink: float, n: int, chunk: int, num_iters: int) -> dict:
  """Box-bounded fits over B and the unconstrained least squares, for one draw."""
  m_fit, m_score = _moments(key, d=d, r=r, feature=feature, target=target, kink=kink,
                            n=n, chunk=chunk)
  u_ls, u0_ls = solvers.least_squares(m_fit)
  fit = solvers.box_fit(m_fit, B_grid, num_iters=num_iters, u_hint_r=u_ls)
  score = jax.vmap(functools.partial(solvers.error, m_score))(fit.u_Br, fit.u0_B)
  return dict(error_B=score, fit_error_B=fit.errors_B, gap_B=fit.gap_B,
              ls_error=solvers.error(m_score, u_ls, u0_ls), ls_max_u=jnp.max(jnp.abs(u_ls)),
              yy=m_score.yy, y_var=m_score.yy - m_score.y_mean**2)


def validate(config: mlc.ConfigDict) -> None:
  validation.positive_ints("ds", config.ds)
  validation.positive_ints("rs", config.rs)
  validation.one_of("features", config.features, features.names())
  validation.one_of("targets", config.targets, TARGETS)
  validation.positive_ints("num_seeds", config.num_seeds)
  validation.positive_ints("num_iters", config.num_iters)
  validation.positive_ints("num_B", config.num_B, minimum=2)
  validation.positive_floats("rB_range", config.rB_range)
  if len(config.rB_range) != 2 or config.rB_range[0] >= config.rB_range[1]:
    raise validation.ConfigError("rB_range", "must be (low, high) with 0 < low < high")
  validation.positive_ints("mc_ratio", config.mc_ratio)
  validation.positive_ints("mc_chunk", config.mc_chunk)
  if abs(config.neuron_kink) > 2:
    raise validation.ConfigError("neuron_kink", "must lie in [-2, 2] (a kink in the bulk)")
  validation.positive_ints("sample_max_d", config.sample_max_d)
  validation.positive_ints("sample_max_r", config.sample_max_r)


def _exact(feature: str) -> bool:
  return features.get(feature).ridge is not None


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  grid = []
  for feature in config.features:
    for d in config.ds:
      for r in config.rs:
        if not _exact(feature) and (d > config.sample_max_d or r > config.sample_max_r):
          continue
        for target in config.targets:
          grid.append(dict(d=d, r=r, feature=feature, target=target))
  return grid


def B_grid(config: mlc.ConfigDict, cell: dict[str, Any]) -> np.ndarray:
  """The grid of B: r·B log-spaced over rB_range (times a for the rescaled neuron)."""
  scale = 1.0
  if cell["target"] == "neuron":
    scale = float(4 * psi.psi_params(cell["d"]).m + 2)
  lo, hi = config.rB_range
  return scale * np.geomspace(lo, hi, config.num_B) / cell["r"]


def threshold(cell: dict[str, Any]) -> float:
  """ε of the theorem: 1/6 on ψ (‖ψ‖² ≈ 1/3), 1/50 on the rescaled neuron."""
  return 1 / 6 if cell["target"] == "psi" else 1 / 50


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array) -> list[dict]:
  d, r, feature, target = cell["d"], cell["r"], cell["feature"], cell["target"]
  exact = _exact(feature)
  n = 0 if exact else config.mc_ratio * r
  chunk = min(config.mc_chunk, n) if n else 1
  if n:
    n = (n // chunk) * chunk
  fn = functools.partial(_fit_seed, d=d, r=r, feature=feature, target=target,
                         kink=config.neuron_kink, n=n, chunk=chunk, num_iters=config.num_iters)
  grid = B_grid(config, cell)
  out = sweep.over_seeds(fn, sweep.seed_keys(key, config.num_seeds), jnp.asarray(grid))
  rows = []
  for s in range(config.num_seeds):
    yy = float(out["yy"][s])
    common = dict(d=d, r=r, feature=feature, target=target, seed=s,
                  mode="exact" if exact else "monte_carlo", mc_n=n, yy=yy,
                  y_var=float(out["y_var"][s]), eps=threshold(cell),
                  ls_error=float(out["ls_error"][s]),
                  ls_relative_error=float(out["ls_error"][s]) / yy,
                  ls_rB=float(out["ls_max_u"][s]) * r)
    for i, B in enumerate(grid):
      err = float(out["error_B"][s, i])
      rows.append(dict(common, B=float(B), rB=float(B) * r, error=err,
                       relative_error=err / yy,
                       certified_lower=float(out["fit_error_B"][s, i] - out["gap_B"][s, i])))
  return rows


def _reach(rows: list[dict]) -> dict[str, Any]:
  """For one (feature, target, d): smallest r·B reaching ε over r, or the best error."""
  eps = rows[0]["eps"]
  hits = [r["rB"] for r in rows if results.to_float(r["error"]) <= eps]
  best = min(min(results.to_float(r["error"]) for r in rows),
             min(results.to_float(r["ls_error"]) for r in rows))
  yy = float(np.mean([r["yy"] for r in rows]))
  return dict(eps=eps, rB_min=min(hits) if hits else None, best_error=best,
              best_relative_error=best / yy, reached=bool(hits))


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """r·min B vs d per family and target; its growth rate; the best error where not reached."""
  table: dict[str, dict[str, dict[int, Any]]] = {}
  for f in config.features:
    for t in config.targets:
      per_d = {}
      for d in config.ds:
        sel = [r for r in rows if r["feature"] == f and r["target"] == t and r["d"] == d]
        if sel:
          per_d[d] = _reach(sel)
      table.setdefault(f, {})[t] = per_d
  rates, ok_all = {}, True
  for f, per_t in table.items():
    for t, per_d in per_t.items():
      ds = sorted(per_d)
      reached = [d for d in ds if per_d[d]["reached"]]
      # Exponential growth: r·min B increases with d while reachable, and once it is
      # not reachable at the largest r·B tried, it stays unreachable at larger d.
      monotone = all(per_d[a]["rB_min"] <= per_d[b]["rB_min"]
                     for a, b in zip(reached, reached[1:]))
      first_miss = next((d for d in ds if not per_d[d]["reached"]), None)
      stays = first_miss is None or all(not per_d[d]["reached"] for d in ds if d > first_miss)
      rate = (float(np.polyfit(reached, np.log([per_d[d]["rB_min"] for d in reached]), 1)[0])
              if len(reached) > 1 else float("nan"))
      rates[f"{f}/{t}"] = dict(rate_per_d=rate, reached_at=reached, first_not_reached=first_miss,
                               monotone=bool(monotone and stays))
      ok_all = ok_all and monotone and stays
  main = table.get(config.features[0], {}).get("psi", {})
  largest_d = max(main) if main else None
  final_rel = main[largest_d]["best_relative_error"] if main else float("nan")
  rate_text = "; ".join(
      f"{k}: reached at d = {v['reached_at'] or 'none'}, growth e^{{{v['rate_per_d']:.2f} d}}"
      for k, v in rates.items())
  return dict(
      claim=("Thms. 4.2/4.3: to fit ψ_{w*} (or the rescaled hard neuron) to error ε with r "
             "random features, r·max|u_i| must grow exponentially in d."),
      prediction=("r·min B reaching ε = 1/6 on ψ (1/50 on the neuron) grows with d, and "
                  "beyond small d no r·B tried reaches it: the best error rises to ‖ψ‖²"),
      measured=(f"{rate_text}; best relative error on ψ at d = {largest_d}: {final_rel:.3f} "
                f"({config.features[0]}, r ≤ {max(config.rs)})"),
      holds=bool(ok_all),
      rates=rates,
      table=table,
  )


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    claim="Thms. 4.2/4.3 (random features need exponential r·max|u|)"))
