"""Prop. 4.1: r random linear features cannot fit <w*, x> unless r is close to d.

For x ~ N(0, I_d), E(Σ u_i <w_i,x> − <w*,x>)² = |Σ u_i w_i − w*|², so the best fit
leaves |P⊥ w*|², the part of the unit vector w* outside span(w_i). For spherically
symmetric w_i that is Beta((d−r)/2, r/2): mean 1 − r/d (docs/theory.md, 'Linear random
features'). The verdict is on `feature`, a linear ridge family.

Any other registered feature map (`other_features`) is fitted to the same target beside it,
with a free bias: exact moments where its activation record has exact mode, Monte Carlo
moments on `other_mc_n` inputs otherwise; the least-squares error (rfjax.boxqp, certified by
its gap) is reported against 1 − r/d with its mode, method and precision, never deciding.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections as mlc
import numpy as np
import scipy.stats

from rfjax import api
from rfjax import boxqp
from rfjax import distributions
from rfjax import experiments
from rfjax import features
from rfjax import linalg
from rfjax import plots
from rfjax import results
from rfjax import stats
from rfjax import sweep
from rfjax import targets
from rfjax import validation
from rfjax import verdicts

NAME = "linear_rf"
# The row fields that tell one cell's rows apart, in row-key order (Experiment.row_id_fields).
ROW_ID_FIELDS = ("mode", "feature", "r", "seed")


def best_linear_error(w_dr: jax.Array, w_star_d: jax.Array) -> jax.Array:
  """min_u E(Σ u_i <w_i,x> − <w*,x>)² = |P⊥ w*|² for x ~ N(0, I), |w*| = 1. Scalar."""
  q_dr, _ = linalg.qr(w_dr)                  # orthonormal basis of span(w_i), r ≤ d
  proj = jnp.dot(q_dr.T, w_star_d, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(1.0 - jnp.sum(proj**2), 0.0)


def _one_seed(key: jax.Array, *, d: int, r: int, feature: str) -> jax.Array:
  """Best-fit error for one draw of (w*, w_1..w_r). Scalar."""
  k_star, k_feat = jax.random.split(key)
  fm = features.get(feature)
  w_dr = fm.ridge(fm.init(k_feat, d, r)).w_dr.astype(jnp.float64)
  w_star_d = distributions.unit_vectors(k_star, (d,), dtype=jnp.float64, guard_zero=False)
  return best_linear_error(w_dr, w_star_d)


def other_fit(key: jax.Array, *, d: int, r: int, feature: str, n: int, chunk: int
              ) -> dict[str, Any]:
  """Least-squares fit (free bias) of <w*, x>, |w*| = 1, by r features of any map, one draw."""
  k_star, k_feat, k_x = jax.random.split(key, 3)
  target = targets.linear(
      distributions.unit_vectors(k_star, (d,), dtype=jnp.float64, guard_zero=False))
  fm = features.get(feature)
  m, mode, method = api.moments(feature, fm.init(k_feat, d, r), target, d=d, key=k_x, n=n,
                                chunk=chunk)
  p = boxqp.problem(m)
  ls = boxqp.least_squares(p)
  precision = {"closed_form": api.CLOSED_FORM_RTOL, "quadrature": api.QUADRATURE_ATOL}.get(
      method, 1.0 / math.sqrt(n))
  return dict(error=ls.error / p.yy, gap=ls.gap / p.yy, mode=mode, method=method,
              precision=precision, mc_n=n if mode == "sample" else 0)


def validate(config: mlc.ConfigDict) -> None:
  validation.one_of("feature", config.feature, features.names())
  act = api.ridge_activation(config.feature)
  if act is None or not act.gaussian.affine:
    raise validation.ConfigError("feature", f"{config.feature!r} is not a linear ridge feature "
                                 "map (the verdict's Beta law is for linear features)")
  if tuple(config.other_features):
    validation.one_of("other_features", config.other_features, features.names())
  validation.positive_ints("other_seeds", config.other_seeds, minimum=2)
  validation.positive_ints("other_mc_n", config.other_mc_n)
  validation.positive_ints("other_mc_chunk", config.other_mc_chunk)
  ds = validation.positive_ints("ds", config.ds, minimum=2)
  validation.fractions("ratios", config.ratios, low=0.0, high=1.0)
  validation.positive_ints("num_seeds", config.num_seeds, minimum=2)
  validation.positive_ints("tail_ds", config.tail_ds, minimum=2)
  validation.positive_ints("tail_seeds", config.tail_seeds, minimum=2)
  validation.fractions("threshold", config.threshold, low=0.0, high=1.0)
  validation.positive_floats("max_mean_z", config.max_mean_z)
  validation.positive_floats("max_tail_z", config.max_tail_z)
  for d in ds:
    for ratio in config.ratios:
      if round(ratio * d) < 1:
        raise validation.ConfigError("ratios", f"ratio {ratio} gives r = 0 at d = {d}")


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  grid = [dict(d=d, r=int(round(ratio * d)), num_seeds=config.num_seeds)
          for d in config.ds for ratio in config.ratios]
  grid += [dict(d=d, r=d // 2, num_seeds=config.tail_seeds) for d in config.tail_ds]
  grid += [dict(d=d, r=int(round(ratio * d)), num_seeds=config.other_seeds, feature=f)
           for f in config.other_features for d in config.ds for ratio in config.ratios]
  return grid


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array) -> list[dict]:
  d, r = cell["d"], cell["r"]
  if "feature" in cell:                      # another feature map, reported beside
    keys = sweep.seed_keys(key, cell["num_seeds"])
    return [dict(d=d, r=r, num_seeds=cell["num_seeds"], seed=s, feature=cell["feature"],
                 **other_fit(keys[s], d=d, r=r, feature=cell["feature"],
                             n=config.other_mc_n, chunk=config.other_mc_chunk))
            for s in range(cell["num_seeds"])]
  fn = functools.partial(_one_seed, d=d, r=r, feature=config.feature)
  errors = sweep.over_seeds(fn, sweep.seed_keys(key, cell["num_seeds"]))
  return [dict(d=d, r=r, num_seeds=cell["num_seeds"], seed=s, feature=config.feature,
               error=float(e)) for s, e in enumerate(errors)]


def _other_cell(feature: str, d: int, r: int, rows: list[dict]) -> dict[str, Any]:
  """The mean error ± s.e. of another feature map's rows at (d, r), beside the prediction."""
  mean, se = stats.mean_se([x["error"] for x in rows])
  return dict(feature=feature, d=d, r=r, mode=rows[0]["mode"], method=rows[0]["method"],
              precision=rows[0]["precision"], predicted=1.0 - r / d, mean_error=mean,
              stderr=se)


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """Mean error within max_mean_z standard errors of 1 − r/d in every cell; at r = d/2, the
  fraction of errors below the threshold within max_tail_z binomial s.e. of the Beta law."""
  by_cell: dict[tuple[int, int, int], list[float]] = {}
  others: dict[tuple[str, int, int], list[dict]] = {}
  for row in rows:
    if row.get("feature", config.feature) != config.feature:
      others.setdefault((row["feature"], row["d"], row["r"]), []).append(row)
      continue
    by_cell.setdefault((row["d"], row["r"], row["num_seeds"]), []).append(
        results.to_float(row["error"]))
  table, worst_z, min_ks = [], 0.0, 1.0
  for (d, r, n), errs in sorted(by_cell.items()):
    e = np.asarray(errs)
    mean, se = stats.mean_se(e)
    pred = 1.0 - r / d
    z = abs(mean - pred) / se if se > 0 else float("inf")
    ks = float(scipy.stats.kstest(e, scipy.stats.beta((d - r) / 2, r / 2).cdf).pvalue)
    below = float(np.mean(e < config.threshold))
    beta_below = float(scipy.stats.beta.cdf(config.threshold, (d - r) / 2, r / 2))
    # The tail probability against the Beta law, in binomial standard errors.
    tail_se = math.sqrt(max(beta_below * (1 - beta_below), 1e-300) / len(e))
    tail_z = abs(below - beta_below) / tail_se
    table.append(dict(d=d, r=r, num_seeds=n, mean_error=mean, stderr=se, predicted=pred,
                      z=z, ks_pvalue=ks, frac_below=below, beta_frac_below=beta_below,
                      tail_z=tail_z))
    worst_z, min_ks = max(worst_z, z), min(min_ks, ks)
  tail = [c for c in table if 2 * c["r"] == c["d"]]
  worst_tail = max((c["tail_z"] for c in tail), default=0.0)
  # A cell whose errors do not vary (fewer than two distinct draws) has no standard error.
  unresolved = [c for c in table if not c["stderr"] > 0]
  reasons = [f"d={c['d']}, r={c['r']}: the errors do not vary, no standard error"
             for c in unresolved]
  reasons += [f"d={c['d']}, r={c['r']}: mean {c['mean_error']:.4g} is {c['z']:.2f} s.e. "
              f"from 1 − r/d = {c['predicted']:.4g} (> {config.max_mean_z:g})"
              for c in table if c not in unresolved and c["z"] > config.max_mean_z]
  reasons += [f"d={c['d']}, r={c['r']}: P(error < {config.threshold}) = {c['frac_below']:.4g} "
              f"is {c['tail_z']:.2f} binomial s.e. from the Beta law's "
              f"{c['beta_frac_below']:.4g} (> {config.max_tail_z:g})"
              for c in tail if c["tail_z"] > config.max_tail_z]
  if not tail:
    reasons.append("no cell at r = d/2: the tail probability was not measured")
  mean_ok = None if unresolved else worst_z <= config.max_mean_z
  tail_ok = None if not tail else worst_tail <= config.max_tail_z
  verdict = verdicts.combine([verdicts.judge(mean_ok), verdicts.judge(tail_ok)])
  tail_ds = sorted({c["d"] for c in tail})
  return dict(
      claim=("Prop. 4.1: r random linear features fit the unit-norm <w*,x> with best "
             "error |P⊥w*|² ~ Beta((d−r)/2, r/2), mean 1 − r/d; at r = d/2 the chance "
             f"of error < {config.threshold} falls exponentially in d."),
      prediction=(f"mean error within {config.max_mean_z:g} standard errors of 1 − r/d in "
                  f"every cell, and P(error < {config.threshold}) at r = d/2 within "
                  f"{config.max_tail_z:g} binomial standard errors of the Beta law"),
      measured=f"largest |mean − (1 − r/d)| / stderr = {worst_z:.2f}; "
               f"largest tail deviation = {worst_tail:.2f} s.e.; "
               f"smallest KS p-value against the Beta law = {min_ks:.3g}"
               + "".join(f"; {f} ({sel[0]['mode']}, not deciding) d={d}, r={r}: best error "
                         f"{np.mean([x['error'] for x in sel]):.3g} (1 − r/d = {1 - r / d:.3g})"
                         for (f, d, r), sel in sorted(others.items())),
      **verdicts.fields(
          verdict, reasons=reasons,
          would_fail_if=(
              f"some cell's mean best-fit error lying more than {config.max_mean_z:g} "
              "standard errors from 1 − r/d, or at some r = d/2 the fraction of draws with "
              f"error < {config.threshold} lying more than {config.max_tail_z:g} binomial "
              "standard errors from the Beta law's probability"),
          departures=(
              f"a finite grid (d in {list(config.ds)}, r/d in {list(config.ratios)}, "
              f"{config.num_seeds} draws per cell; tail at r = d/2 for d in {tail_ds}); "
              "the proposition's probability bound (error ≥ 1/4 with probability ≥ 1 − e^{−cd} "
              "for r ≤ d/2) is tested through the exact Beta law of the error at each finite "
              "d, cell by cell; the exponential decay in d is drawn, not fitted or judged; "
              f"each of the {len(table)} cells is tested at its own z-threshold with no "
              f"correction for testing many cells; w_i from feature map {config.feature!r} "
              "(the Beta law needs spherically symmetric w_i)")),
      max_z=worst_z,
      max_tail_z=worst_tail,
      other_features=[_other_cell(f, d, r, sel) for (f, d, r), sel in sorted(others.items())],
      min_ks_pvalue=min_ks,
      cells=table,
  )


# ------------------------------------------------------------------------------ figure


def figure(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]) -> plt.Figure:
  """Error vs r/d against 1 − r/d and the Beta law; tail probability vs d."""
  cells = summary["cells"]
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
  grid = np.linspace(0.0, 1.0, 101)
  ax1.plot(grid, 1 - grid, "k-", lw=1, label="1 − r/d (Prop. 4.1)")
  main = [c for c in cells if c["num_seeds"] == config.num_seeds]
  ds = sorted({c["d"] for c in main})
  colors = plt.cm.viridis(np.linspace(0, 0.85, max(len(ds), 1)))
  for d, color in zip(ds, colors):
    cs = sorted((c for c in main if c["d"] == d), key=lambda c: c["r"])
    x = np.array([c["r"] / d for c in cs])
    lo = [scipy.stats.beta.ppf(0.05, (d - c["r"]) / 2, c["r"] / 2) for c in cs]
    hi = [scipy.stats.beta.ppf(0.95, (d - c["r"]) / 2, c["r"] / 2) for c in cs]
    ax1.fill_between(x, lo, hi, color=color, alpha=0.12)
    ax1.errorbar(x, [c["mean_error"] for c in cs], yerr=[3 * c["stderr"] for c in cs],
                 fmt="o", color=color, ms=4, capsize=2, label=f"d = {d} (mean ± 3 s.e.)")
  for k, f in enumerate(sorted({o["feature"] for o in summary.get("other_features", ())})):
    os_ = [o for o in summary["other_features"] if o["feature"] == f]
    ax1.errorbar([o["r"] / o["d"] for o in os_], [o["mean_error"] for o in os_],
                 yerr=[3 * o["stderr"] for o in os_], fmt="s", mfc="none", color=f"C{k + 1}",
                 ms=5, capsize=2, label=f"{f} ({os_[0]['mode']}, beside)")
  ax1.set(xlabel="r / d", ylabel="min_u E(Σ u_i<w_i,x> − <w*,x>)²",
          title="Best linear-RF error; bands: Beta law 5–95%")
  ax1.legend(fontsize=8)
  tail = sorted((c for c in cells if c["num_seeds"] == config.tail_seeds
                 and 2 * c["r"] == c["d"]), key=lambda c: c["d"])
  if tail:
    d = np.array([c["d"] for c in tail])
    frac = np.array([c["frac_below"] for c in tail])
    floor = 0.5 / config.tail_seeds
    dd = np.arange(d.min(), d.max() + 1)
    ax2.semilogy(dd, scipy.stats.beta.cdf(config.threshold, dd / 4, dd / 4), "k-", lw=1,
                 label="Beta law (exact)")
    hit = frac > 0
    err = np.sqrt(frac * (1 - frac) / config.tail_seeds)
    ax2.errorbar(d[hit], frac[hit], yerr=2 * err[hit], fmt="o", color="C3", capsize=2,
                 label=f"measured ± 2 s.e. ({config.tail_seeds} draws)")
    if (~hit).any():
      ax2.semilogy(d[~hit], np.full((~hit).sum(), floor), "v", mfc="none", color="C3",
                   label="none below (plotted at 1/(2·draws))")
    ax2.set(xlabel="d", ylabel=f"P(error < {config.threshold}) at r = d/2",
            title="Small error at r = d/2 is exponentially rare")
    ax2.legend(fontsize=8)
  plots.title(fig, summary)
  return fig


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    figure=figure, row_id_fields=ROW_ID_FIELDS,
    claim="Prop. 4.1 (linear random features)"))
