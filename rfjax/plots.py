"""One figure per experiment (matplotlib, Agg backend), written atomically."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections as mlc  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from rfjax import registry  # noqa: E402

Plotter = Callable[[mlc.ConfigDict, list[dict], dict[str, Any]], plt.Figure]
PLOTTERS: registry.Registry[Plotter] = registry.Registry("plot")


def save(name: str, config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any],
         path: str) -> None:
  """Draws experiment `name`'s figure and writes it to `path` (PNG) atomically."""
  fig = PLOTTERS.get(name)(config, rows, summary)
  fig.tight_layout()
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".png")
  os.close(fd)
  try:
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
  finally:
    plt.close(fig)
    if os.path.exists(tmp):
      os.unlink(tmp)


def _title(fig: plt.Figure, summary: dict[str, Any]) -> None:
  verdict = "holds" if summary.get("holds") else "does NOT hold"
  fig.suptitle(f"{summary.get('experiment', '')}: prediction {verdict}", fontsize=11)


@PLOTTERS.register("linear_rf")
def linear_rf(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]) -> plt.Figure:
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
    lo = [stats.beta.ppf(0.05, (d - c["r"]) / 2, c["r"] / 2) for c in cs]
    hi = [stats.beta.ppf(0.95, (d - c["r"]) / 2, c["r"] / 2) for c in cs]
    ax1.fill_between(x, lo, hi, color=color, alpha=0.12)
    ax1.errorbar(x, [c["mean_error"] for c in cs], yerr=[3 * c["stderr"] for c in cs],
                 fmt="o", color=color, ms=4, capsize=2, label=f"d = {d} (mean ± 3 s.e.)")
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
    ax2.semilogy(dd, stats.beta.cdf(config.threshold, dd / 4, dd / 4), "k-", lw=1,
                 label="Beta law (exact)")
    hit = frac > 0
    ax2.semilogy(d[hit], frac[hit], "o", color="C3",
                 label=f"measured ({config.tail_seeds} draws)")
    if (~hit).any():
      ax2.semilogy(d[~hit], np.full((~hit).sum(), floor), "v", mfc="none", color="C3",
                   label="none below (plotted at 1/(2·draws))")
    ax2.set(xlabel="d", ylabel=f"P(error < {config.threshold}) at r = d/2",
            title="Small error at r = d/2 is exponentially rare")
    ax2.legend(fontsize=8)
  _title(fig, summary)
  return fig


@PLOTTERS.register("neuron_gd")
def neuron_gd(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]) -> plt.Figure:
  """SGD curves per d; steps to tolerance vs d; GD vs random features vs d."""
  fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
  gd = [r for r in rows if r["regime"] == "gd"]
  ds = sorted({r["d"] for r in gd})
  colors = plt.cm.viridis(np.linspace(0, 0.85, max(len(ds), 1)))
  for d, color in zip(ds, colors):
    steps = sorted({r["step"] for r in gd if r["d"] == d})
    vals = np.array([[float(r["relative_error"]) for r in gd if r["d"] == d and r["step"] == s]
                     for s in steps])
    ax1.loglog(steps, np.median(vals, axis=1), color=color, label=f"d = {d}")
    ax1.fill_between(steps, np.quantile(vals, 0.1, axis=1), np.quantile(vals, 0.9, axis=1),
                     color=color, alpha=0.15)
  ax1.axhline(config.tolerance, color="k", ls="--", lw=1, label=f"tolerance {config.tolerance}")
  ax1.set(xlabel="SGD step", ylabel="relative error ‖N − y‖²/‖y‖²",
          title="One neuron, SGD (median, 10–90% band)")
  ax1.set_ylim(bottom=max(1e-16, ax1.get_ylim()[0]))
  ax1.legend(fontsize=8)
  cells = summary["cells"]
  cd = np.array([c["d"] for c in cells if c["max_steps"]], float)
  if cd.size:
    ax2.loglog(cd, [c["max_steps"] for c in cells if c["max_steps"]], "o-", color="C3",
               label="worst run")
    ax2.loglog(cd, [c["median_steps"] for c in cells if c["max_steps"]], "s-", color="C0",
               label="median run")
    ref = max(c["max_steps"] for c in cells if c["max_steps"])
    ax2.loglog(cd, ref * (cd / cd.min()) ** 2, "k:", lw=1, label="∝ d² from the first point")
  ax2.set(xlabel="d", ylabel=f"steps to relative error ≤ {config.tolerance}",
          title=f"Steps grow like d^{summary['steps_power']:.2f}")
  ax2.legend(fontsize=8)
  final = [c["median_final_relative_error"] for c in cells]
  rf = [c["rf_median_relative_error"] for c in cells]
  x = [c["d"] for c in cells]
  ax3.semilogy(x, np.maximum(final, 1e-17), "o-", color="C0",
               label=f"one neuron, SGD ({config.steps} steps)")
  ax3.semilogy(x, rf, "s-", color="C3",
               label=f"best fit, r = {config.rf_r} random features ({config.rf_feature})")
  ax3.axhline(config.tolerance, color="k", ls="--", lw=1)
  ax3.set(xlabel="d", ylabel="relative error (median)", title="Same targets: GD vs random features")
  ax3.legend(fontsize=8)
  _title(fig, summary)
  return fig


@PLOTTERS.register("psi_correlation")
def psi_correlation(config: mlc.ConfigDict, rows: list[dict],
                    summary: dict[str, Any]) -> plt.Figure:
  """E|<f, ψ_{w*}>| vs d (exact, sampled w*, Monte Carlo); ψ and its ReLU sum; ‖ψ‖²."""
  from rfjax import psi  # the figure draws ψ itself
  fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.4),
                                      gridspec_kw=dict(width_ratios=[1.6, 1, 1]))
  for i, (f, curves) in enumerate(summary["exact"].items()):
    color = f"C{i}"
    ds = np.array([int(d) for d in curves["exact"]], float)
    vals = np.array(list(curves["exact"].values()))
    ax1.semilogy(ds, vals, "o-", color=color, label=f"{f}: exact (ρ-integral)")
    ds_s = [int(d) for d in curves["exact_sampled"]]
    ax1.semilogy(ds_s, np.maximum(list(curves["exact_sampled"].values()), 1e-300), "x:",
                 color=color, alpha=0.7, label=f"{f}: {config.num_w_star} sampled w*")
    c = summary["decay_rates"][f]
    ok = vals > 0
    if ok.sum() > 1:
      a = np.polyfit(ds[ok], np.log(vals[ok]), 1)
      ax1.semilogy(ds, np.exp(np.polyval(a, ds)), "-", color=color, lw=0.6, alpha=0.6)
  for j, (f, curve) in enumerate(summary["monte_carlo"].items()):
    ds = [int(d) for d in curve]
    vals = [v["mean_abs_corr"] for v in curve.values()]
    se = [v["stderr"] for v in curve.values()]
    ax1.errorbar(ds, vals, yerr=se, fmt="s", mfc="none", color=f"C{j + 4}", ms=5,
                 label=f"{f}: Monte Carlo (n = {config.mc_n:.0e})")
  ax1.set(xlabel="d  (‖w*‖ = d)", ylabel="E_{w*} |<f, ψ_{w*}>| / ‖f‖",
          title="Correlation with ψ falls exponentially in d")
  ax1.legend(fontsize=7, ncol=2)
  d = 3
  pp = psi.psi_params(d)
  z = np.linspace(-pp.A - 2, pp.A + 2, 2000)
  ax2.plot(z, np.asarray(psi.psi(z, pp.m)), "k-", lw=2.5, alpha=0.3, label="ψ = T(clip(z, ±A))")
  ax2.plot(z, np.asarray(psi.psi_relu_sum(z, pp.m)), "C3-", lw=0.9,
           label=f"sum of a = {4 * pp.m + 2} ReLUs")
  ax2.set(xlabel="z", ylabel="ψ(z)",
          title=f"ψ at d = {d} (max error over d: {summary['psi_sum_max_err']:.0e})")
  ax2.legend(fontsize=8, loc="lower right")
  norms = {}
  for r in rows:
    norms[r["d"]] = float(r["psi_norm_sq"])
  ax3.plot(list(norms), list(norms.values()), "o-", label="‖ψ_{w*}‖² (exact)")
  ax3.axhline(1 / 6, color="k", ls="--", lw=1, label="1/6 (Prop. 4.4)")
  ax3.axhline(1 / 3, color="gray", ls=":", lw=1, label="1/3 (no cut-off)")
  ax3.set(xlabel="d", ylabel="‖ψ_{w*}‖²", title="ψ keeps its norm", ylim=(0, 0.45))
  ax3.legend(fontsize=8)
  _title(fig, summary)
  return fig


@PLOTTERS.register("relu_neuron_rf")
def relu_neuron_rf(config: mlc.ConfigDict, rows: list[dict],
                   summary: dict[str, Any]) -> plt.Figure:
  """Error vs r·B per d; r·min B vs d; the best error vs d."""
  fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.4))
  main_f = config.features[0]
  sel = [r for r in rows if r["feature"] == main_f and r["target"] == "psi"]
  r_max = max((r["r"] for r in sel), default=None)
  ds = sorted({r["d"] for r in sel})
  colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(ds), 1)))
  for d, color in zip(ds, colors):
    pts = sorted(((r["rB"], float(r["error"])) for r in sel
                  if r["d"] == d and r["r"] == r_max and r["seed"] == 0))
    if pts:
      ax1.loglog(*zip(*pts), "o-", color=color, ms=3, label=f"d = {d}")
  ax1.axhline(1 / 6, color="k", ls="--", lw=1, label="ε = 1/6")
  ax1.set(xlabel="r·B  (|u_i| ≤ B)", ylabel="E(Σu_i f_i + u_0 − ψ_{w*})²",
          title=f"Fitting ψ with r = {r_max} {main_f} features")
  ax1.legend(fontsize=7, ncol=2)
  top = config.rB_range[1]
  for i, (f, per_t) in enumerate(summary["table"].items()):
    for t, marker in (("psi", "o"), ("neuron", "s")):
      per_d = per_t.get(t, {})
      if not per_d:
        continue
      dd = [int(d) for d in per_d]
      hit = [(d, v["rB_min"]) for d, v in zip(dd, per_d.values()) if v["reached"]]
      miss = [d for d, v in zip(dd, per_d.values()) if not v["reached"]]
      ls = "-" if t == "psi" else ":"
      if hit:
        ax2.semilogy(*zip(*hit), marker + ls, color=f"C{i}", label=f"{f} / {t}")
      if miss:
        ax2.semilogy(miss, [top * 3] * len(miss), marker, mfc="none", color=f"C{i}",
                     label=f"{f} / {t}: not reached" if not hit else None)
      rel = [v["best_relative_error"] for v in per_d.values()]
      ax3.plot(dd, rel, marker + ls, color=f"C{i}", label=f"{f} / {t}")
  ax2.axhline(top, color="gray", lw=0.8)
  ax2.text(ax2.get_xlim()[0], top * 4, "not reached at any r·B tried", fontsize=7, va="bottom")
  ax2.set(xlabel="d", ylabel="smallest r·B reaching ε (min over r)",
          title="r·max|u| needed grows exponentially")
  ax2.legend(fontsize=7)
  ax3.axhline(0.5, color="k", ls="--", lw=1, label="ε/‖ψ‖² = 1/2 (ψ)")
  ax3.set(xlabel="d", ylabel="best relative error (any u, largest r)", ylim=(0, 1.05),
          title="Best achievable error rises to ‖y‖²")
  ax3.legend(fontsize=7)
  _title(fig, summary)
  return fig
