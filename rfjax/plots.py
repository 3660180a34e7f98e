"""One figure per experiment (matplotlib), written atomically.

Importing this module sets no matplotlib backend (a notebook keeps its own); the command line
asks for Agg through MPLBACKEND.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import matplotlib
import matplotlib.patches
import matplotlib.ticker
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
    os.chmod(tmp, 0o644)                      # mkstemp makes 0600 files
    os.replace(tmp, path)
  finally:
    plt.close(fig)
    if os.path.exists(tmp):
      os.unlink(tmp)


def _title(fig: plt.Figure, summary: dict[str, Any]) -> None:
  """'<experiment>: prediction holds / FAILS / inconclusive' from summary['verdict'] (from
  summary['holds'] for a summary written before verdicts)."""
  verdict = summary.get("verdict")
  if verdict not in ("holds", "fails", "inconclusive"):
    verdict = "holds" if summary.get("holds") else "fails"
  shown = "FAILS" if verdict == "fails" else verdict
  fig.suptitle(f"{summary.get('experiment', '')}: prediction {shown}", fontsize=11)


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
    ax2.semilogy(dd, stats.beta.cdf(config.threshold, dd / 4, dd / 4), "k-", lw=1,
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
  _title(fig, summary)
  return fig


@PLOTTERS.register("neuron_gd")
def neuron_gd(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]) -> plt.Figure:
  """SGD curves per d; steps to tolerance vs d; GD vs the certified random-features lower
  bound at the weight budget (points: every seed and kink; dotted: least squares) vs d."""
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
  if cd.size:
    ax2.set_xticks(cd)
    ax2.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ax2.set(xlabel="d", ylabel=f"steps to relative error ≤ {config.tolerance}",
          title=f"Steps grow like d^{summary['steps_power']:.2f}")
  ax2.legend(fontsize=8)
  x = [c["d"] for c in cells]
  final = [c["median_final_relative_error"] for c in cells]
  ax3.semilogy(x, np.maximum(final, 1e-17), "o-", color="C0",
               label=f"one neuron, SGD ({config.steps} steps, median)")
  rf = [r for r in rows if r["regime"] == "random_features"]
  for i, kind in enumerate(config.kinds):
    mine = [c for c in cells if f"rf_{kind}" in c]
    if not mine:
      continue
    xs = [c["d"] for c in mine]
    color = f"C{3 + i}"
    ax3.semilogy(xs, [max(c[f"rf_{kind}"]["hardest_lower"], 1e-17) for c in mine], "s-",
                 color=color, label=f"RF {kind}: certified lower bound, hardest kink")
    pts = [r for r in rf if r["target"] == kind]
    ax3.semilogy([r["d"] for r in pts],
                 [max(float(r["lower_relative_error"]), 1e-17) for r in pts], ".",
                 color=color, alpha=0.35, ms=4)
    ax3.semilogy(xs, [c[f"rf_{kind}"]["median_ls_relative_error"] for c in mine], ":",
                 color=color, lw=1, label=f"RF {kind}: least squares, no budget (median)")
  ax3.axhline(config.tolerance, color="k", ls="--", lw=1, label=f"tolerance {config.tolerance}")
  ax3.axvspan(min(x) * 0.9 if x else 1, config.rf_min_d * 0.95, color="0.9", zorder=0,
              label=f"d < {config.rf_min_d}: not checked")
  ax3.set_xscale("log", base=2)
  if x:
    ax3.set_xticks(x)
    ax3.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax3.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ax3.set(xlabel="d", ylabel="relative error",
          title=(f"r = {config.rf_r} random features, r·max|u| ≤ "
                 f"{config.rf_budget_coef:g}·d^{config.rf_budget_power:g}"))
  ax3.legend(fontsize=7, loc="center right")
  _title(fig, summary)
  return fig


@PLOTTERS.register("psi_correlation")
def psi_correlation(config: mlc.ConfigDict, rows: list[dict],
                    summary: dict[str, Any]) -> plt.Figure:
  """m_d = E|<f, ψ_{w*}>|/‖f‖ vs d against √(20 e^{−cd}): exact families with their fitted
  rate and its bootstrap band; Monte Carlo families with ± 1 s.e. and their 3 s.e. floor
  (unresolved values hollow at the floor); ψ and its ReLU sum; ‖ψ‖²."""
  from rfjax import psi  # the figure draws ψ itself
  fig, ((ax1, ax2), (ax3, ax4)) = plt.subplots(2, 2, figsize=(14, 9.5),
                                               gridspec_kw=dict(width_ratios=[1.5, 1]))
  fits = summary.get("bound_fits", {})
  markers = ["o", "s", "^", "P", "D", "v"]
  c_maxes = []
  for i, (f, curves) in enumerate(summary["exact"].items()):
    color, fit = f"C{i}", fits.get(f, {})
    ds = np.array([int(d) for d in curves["exact"]], float)
    vals = np.array(list(curves["exact"].values()), float)
    ok = np.isfinite(vals) & (vals > 0)
    label = f"{f}"
    if fit and np.isfinite(fit.get("c", np.nan)):
      label += (f": ĉ = {fit['c']:.2f} [{fit['c_lo']:.2f}, {fit['c_hi']:.2f}], "
                f"c_max = {fit['c_max']:.2f}")
      c_maxes.append(fit["c_max"])
    # Hollow markers shrinking with i: families with equal m_d (relu_sphere, coupling and
    # linear / √2 coincide exactly) stay visible on top of one another.
    ax1.semilogy(ds[ok], vals[ok], markers[i % len(markers)], color=color,
                 ms=max(10 - 1.6 * i, 4), mfc="none", mew=1.5, label=label, zorder=3)
    if (~ok).any():
      ax1.semilogy(ds[~ok], np.full((~ok).sum(), 1e-300), "v", mfc="none", color=color)
    ds_s = np.array([int(d) for d in curves["exact_sampled"]], float)
    ax1.semilogy(ds_s, np.maximum(list(curves["exact_sampled"].values()), 1e-300), "x",
                 color=color, alpha=0.45, ms=5, zorder=2)
    if fit and np.isfinite(fit.get("slope", np.nan)):
      grid = np.linspace(ds[ok].min(), ds[ok].max(), 100)
      center = np.mean(ds[ok])
      y_center = fit["intercept"] + fit["slope"] * center
      ax1.semilogy(grid, np.exp(fit["intercept"] + fit["slope"] * grid), "-", color=color,
                   lw=0.8, alpha=0.8)
      # Band: lines through the fit's centre with the slopes of the interval's ends.
      ends = [y_center - c / 2 * (grid - center) for c in (fit["c_lo"], fit["c_hi"])]
      ax1.fill_between(grid, np.exp(np.minimum(*ends)), np.exp(np.maximum(*ends)), color=color,
                       alpha=0.15, lw=0)
  if c_maxes:
    c_star = min(c_maxes)
    grid = np.linspace(2, max(int(d) for d in config.ds), 100)
    ax1.semilogy(grid, np.sqrt(20 * np.exp(-c_star * grid)), "k--", lw=1,
                 label=f"bound √(20 e^(−cd)), c = {c_star:.2f} (min c_max)")
  ax1.semilogy([], [], "x", color="gray", label=f"× mean over {config.num_w_star} sampled w* "
               "(underestimates)")
  lows = [v for c in summary["exact"].values() for v in c["exact"].values() if v > 0]
  if lows:      # fitted lines of super-exponential curves overshoot at small d: clip to data
    ax1.set_ylim(min(lows) / 1e3, 30.0)
  ax1.set(xlabel="d  (‖w*‖ = d)", ylabel="m_d = E_{w*} |<f, ψ_{w*}>| / ‖f‖",
          title="Exact mode: fitted m_d ≈ √(C e^(−ĉd)) with its "
                f"{config.interval_level:.0%} band over {config.num_seeds} draws")
  ax1.legend(fontsize=7.5, loc="lower left")
  # Monte Carlo families: resolved points with ± 1 s.e., unresolved hollow at their floor.
  floors = {}
  for j, (f, curve) in enumerate(summary["monte_carlo"].items()):
    color = f"C{j + 4}"
    ds = np.array([int(d) for d in curve], float)
    vals = np.array([v["mean_abs_corr"] for v in curve.values()])
    se = np.array([v["stderr"] for v in curve.values()])
    floor = np.array([v.get("floor", 3 * v["stderr"]) for v in curve.values()])
    res = np.array([bool(v["resolved"]) for v in curve.values()])
    for d, fl in zip(ds, floor):
      floors.setdefault(d, []).append(fl)
    off = (j - 1.5) * 0.06
    status = fits.get(f + " (monte_carlo)", {}).get("status", "")
    lower = np.minimum(se, 0.9 * vals)      # a log axis has no end below zero
    ax2.errorbar(ds[res] + off, vals[res], yerr=[lower[res], se[res]], fmt="o", color=color,
                 ms=6, capsize=2, label=f"{f}: {status}" if status else f)
    ax2.plot(ds[~res] + off, floor[~res], "v", mfc="none", color=color, ms=8, mew=1.5)
  if floors:
    fd = np.array(sorted(floors))
    ax2.semilogy(fd, [np.mean(floors[d]) for d in fd], ":", color="gray", lw=1.5,
                 label=f"floor {config.mc_resolve_factor:g}·s.e. (n = {config.mc_n:.1e}); "
                       "▽ unresolved, at the floor")
  for i, (f, curves) in enumerate(summary["exact"].items()):
    ds = [int(d) for d in curves["exact"] if int(d) <= max(int(d) for d in config.mc_ds) + 1]
    if f in summary["monte_carlo"] and ds:
      ax2.semilogy(ds, [curves["exact"][d] for d in curves["exact"] if int(d) in ds], "-",
                   color="gray", lw=1, alpha=0.7, label=f"{f}, exact mode (other draws)")
  ax2.set_yscale("log")
  ax2.set(xlabel="d", ylabel="m_d (Monte Carlo over x)",
          title="Monte Carlo (reported, does not decide the verdict)")
  ax2.set_xticks(sorted({int(d) for d in config.mc_ds}))
  ax2.legend(fontsize=7, loc="lower left")
  d = 3
  pp = psi.psi_params(d)
  z = np.linspace(-pp.A - 2, pp.A + 2, 2000)
  ax3.plot(z, np.asarray(psi.psi(z, pp.m)), "k-", lw=2.5, alpha=0.3, label="ψ = T(clip(z, ±A))")
  ax3.plot(z, np.asarray(psi.psi_relu_sum(z, pp.m)), "C3-", lw=0.9,
           label=f"sum of a = {4 * pp.m + 2} ReLUs")
  ax3.set(xlabel="z", ylabel="ψ(z)",
          title=f"P1: ψ at d = {d} (max error over d: {summary['psi_sum_max_err']:.0e})")
  ax3.legend(fontsize=8, loc="lower right")
  norms = {}
  for r in rows:
    norms[r["d"]] = float(r["psi_norm_sq"])
  norms = dict(sorted(norms.items()))
  ax4.plot(list(norms), list(norms.values()), "o-", label="‖ψ_{w*}‖² (exact)")
  ax4.axhline(config.psi_norm_min, color="k", ls="--", lw=1, label="1/6 (Prop. 4.4, P2)")
  ax4.axhline(1 / 3, color="gray", ls=":", lw=1, label="1/3 (no cut-off)")
  ax4.set(xlabel="d", ylabel="‖ψ_{w*}‖²", title="P2: ψ keeps its norm", ylim=(0, 0.45))
  ax4.legend(fontsize=8)
  _title(fig, summary)
  return fig


@PLOTTERS.register("relu_neuron_rf")
def relu_neuron_rf(config: mlc.ConfigDict, rows: list[dict],
                   summary: dict[str, Any]) -> plt.Figure:
  """Certified r·min B (median and range over w*) vs d per family, target and ε; the best ψ
  error at a fixed r·B vs d. Not reachable (certified) and unresolved points are marked."""
  table = summary["table"]
  fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
  top = config.rB_max
  styles = {}
  markers = ["o", "s", "^", "D", "v", "P", "X", "*"]

  def style(f: str) -> tuple[str, str]:
    if f not in styles:
      styles[f] = (f"C{len(styles)}", markers[len(styles) % len(markers)])
    return styles[f]

  panels = [(axes[0], "psi", "ψ_{w*}"), (axes[1], "neuron", "hardest ψ-neuron a[<w*,x> − c_j]₊")]
  for ax, target, name in panels:
    for f, by_t in table.items():
      color, marker = style(f)
      for k, (e, by_d) in enumerate(by_t.get(target, {}).items()):
        ls = ["-", "--", ":"][k % 3]
        for r in sorted({r for by_r in by_d.values() for r in map(int, by_r)}):
          pts, lo, hi, miss, unres = [], [], [], [], []
          for d in sorted(by_d, key=int):
            c = by_d[d].get(r, by_d[d].get(str(r)))
            if c is None:
              continue
            q = c["rB_quantiles"]
            if c["unresolved"]:
              unres.append(int(d))
            elif c["rB_median"] is None:
              miss.append(int(d))
            else:
              pts.append((int(d), c["rB_median"]))
              lo.append(q[0])
              hi.append(q[4] if q[4] is not None else top * 3)
          label = f"{f}, ε = {float(e):.3g}, r = {r}"
          if pts:
            x, y = zip(*pts)
            ax.semilogy(x, y, marker + ls, color=color, ms=4, label=label)
            ax.fill_between(x, lo, hi, color=color, alpha=0.12)
            label = None
          if miss:
            ax.semilogy(miss, [top * 3] * len(miss), marker, mfc="none", color=color, ms=6,
                        label=(label + ": not reachable") if label else None)
            label = None
          if unres:
            ax.semilogy(unres, [top * 10] * len(unres), "x", color=color, ms=7,
                        label=(label + ": unresolved") if label else None)
    ax.axhline(top, color="gray", lw=0.8)
    ax.set(xlabel="d", ylabel="certified r·min B (median, band: min–max over w*)",
           title=f"Fitting {name}: hollow = certified not reachable at r·B ≤ {top:.0e}, "
                 "× = unresolved")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=6, ncol=1)
  ax = axes[2]
  for f, by_t in table.items():
    color, marker = style(f)
    by_eps = by_t.get("psi", {})
    if not by_eps:
      continue
    by_d = next(iter(by_eps.values()))
    pts = [(int(d), c[config.fixed_r if config.fixed_r in c else str(config.fixed_r)])
           for d, c in by_d.items()
           if config.fixed_r in c or str(config.fixed_r) in c]
    pts = [(d, c["fixed_error_median"], c["fixed_error_max"]) for d, c in pts
           if c["fixed_error_median"] is not None]
    if pts:
      pts.sort()
      x, med, mx = zip(*pts)
      ax.plot(x, med, marker + "-", color=color, label=f"{f} (median)")
      ax.plot(x, mx, marker, mfc="none", color=color, ms=4)
  for k, e in enumerate(config.eps_psi):
    ax.axhline(e, color="k", ls=["--", ":"][k % 2], lw=1, label=f"ε = {e:.3g}")
  ax.axhline(1 / 3, color="gray", lw=0.8, label="‖ψ‖² ≈ 1/3")
  ax.set(xlabel="d", ylabel=f"certified best error at r·B = {config.fixed_rB:g}",
         title=f"ψ error at fixed r·max|u| = {config.fixed_rB:g} (r = {config.fixed_r}); "
               "hollow: worst w*", ylim=(0, 0.4))
  ax.title.set_fontsize(8)
  ax.legend(fontsize=7)
  _title(fig, summary)
  return fig


@PLOTTERS.register("integral_rep")
def integral_rep(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]
                 ) -> plt.Figure:
  """Top: for the first analytic σ, sup|ĝ_K| against K per d with the theorem's k-form bound
  C_P(k) (dashed, flat in K), one panel per k. Bottom: the truncation residual against K
  (measured and certified) with trunc_tol; polynomial σ: sup|g| against d with C_P(k) and the
  all-g lower bound ‖ĝ‖₂; the residual per P, unrepresentable P marked."""
  cells = summary["cells"]
  analytic = [c for c in cells if "residual_bound_max" in c]
  poly = [c for c in cells if "residual_bound_max" not in c]
  sig_a = sorted({c["sigma"] for c in analytic})
  ks_a = sorted({c["k"] for c in analytic}) or [None]
  ncol = max(len(ks_a), 3)
  fig, axes = plt.subplots(2, ncol, figsize=(5.2 * ncol, 9.5), squeeze=False)
  ds = sorted({c["d"] for c in analytic})
  dcol = dict(zip(ds, plt.cm.plasma(np.linspace(0, 0.85, max(len(ds), 1)))))
  for ax, k in zip(axes[0], ks_a):
    if k is None:
      ax.text(0.5, 0.5, "no analytic σ in this run", ha="center", va="center",
              transform=ax.transAxes)
      continue
    for d in ds:
      cs = sorted((c for c in analytic if (c["sigma"], c["d"], c["k"]) == (sig_a[0], d, k)),
                  key=lambda c: c["K"])
      if not cs:
        continue
      ax.plot([c["K"] for c in cs], [c["sup_g_median"] for c in cs], "o-", color=dcol[d],
              ms=4, label=f"d={d}")
      ax.axhline(cs[0]["bound_k_median"], color=dcol[d], ls="--", lw=0.9)
    ax.set(yscale="log", xlabel="truncation degree K of ĝ",
           ylabel="searched sup|ĝ_K| (median over P)",
           title=f"{sig_a[0]}, deg P ≤ k = {k}: sup|ĝ_K| (o) grows with K;\nC_P(k) "
                 f"({config.bound_form}, dashed) does not")
    ax.legend(fontsize=7, ncol=2)
  for ax in axes[0][len(ks_a):]:
    ax.axis("off")
  ax2, ax3, ax4 = axes[1][:3]
  for ax in axes[1][3:]:
    ax.axis("off")
  if analytic:
    k_lo = min(c["k"] for c in analytic)
    marks = dict(zip(sig_a, ["o", "s", "^", "D"]))
    for sigma in sig_a:
      for d in ds:
        cs = sorted((c for c in analytic if (c["sigma"], c["d"], c["k"]) == (sigma, d, k_lo)),
                    key=lambda c: c["K"])
        if not cs:
          continue
        K = [c["K"] for c in cs]
        ax2.plot(K, [max(c["residual_max"], 1e-18) for c in cs], marks[sigma] + "-",
                 color=dcol[d], ms=4, label=f"d={d}" if sigma == sig_a[0] else None)
        ax2.plot(K, [c["residual_bound_max"] for c in cs], marks[sigma] + ":", color=dcol[d],
                 ms=3, mfc="none", lw=0.8)
    ax2.axhline(config.trunc_tol, color="k", lw=1, ls="--",
                label=f"trunc_tol = {config.trunc_tol:g}")
    ax2.set(yscale="log", xlabel="truncation degree K of ĝ",
            ylabel="residual sup_x |E gσ − P| (max over P)",
            title=f"truncation residual, k={k_lo} ({', '.join(f'{s} {marks[s]}' for s in sig_a)})"
                  ":\nmeasured (solid), certified bound (dotted)")
    ax2.legend(fontsize=7, ncol=2)
  else:
    ax2.text(0.5, 0.5, "no analytic σ in this run", ha="center", va="center",
             transform=ax2.transAxes)
  ks = sorted({c["k"] for c in poly})
  kcol = dict(zip(ks, plt.cm.viridis(np.linspace(0, 0.8, max(len(ks), 1)))))
  for sigma in sorted({c["sigma"] for c in poly}):
    for k in ks:
      cs = sorted((c for c in poly if (c["sigma"], c["k"]) == (sigma, k)), key=lambda c: c["d"])
      if not cs:
        continue
      d = [c["d"] for c in cs]
      ax3.plot(d, [c["sup_g_median"] for c in cs], "o-", color=kcol[k], label=f"{sigma}, k={k}")
      ax3.plot(d, [c["g_l2_max"] for c in cs], "v:", color=kcol[k], ms=3, lw=0.8)
      ax3.plot(d, [c["bound_k_median"] for c in cs], "s--", color=kcol[k], ms=3, lw=1)
  if poly:
    ax3.set(yscale="log", xlabel="dimension d", ylabel="sup|g| (median over P)",
            title=f"polynomial σ (ĝ of degree deg σ): searched sup|ĝ| (o), C_P(k) (■, "
                  f"{config.bound_form}),\n‖ĝ‖₂ (▽, max; below sup|g| of every g)")
    ax3.legend(fontsize=7)
    rep = [r for r in rows if r["sigma"] in {c["sigma"] for c in poly}]
    ok = [r for r in rep if int(r.get("num_unsupported", 0)) == 0]
    bad = [r for r in rep if int(r.get("num_unsupported", 0)) > 0]
    jit = {k: 0.08 * (i - (len(ks) - 1) / 2) for i, k in enumerate(ks)}
    if ok:
      ax4.plot([r["d"] + jit[r["k"]] for r in ok], [max(r["residual"], 1e-18) for r in ok],
               "o", color="tab:blue", ms=4, label="P within the hypothesis")
    if bad:
      ax4.plot([r["d"] + jit[r["k"]] for r in bad], [r["residual"] for r in bad], "x",
               color="tab:red", ms=7, label="P with a monomial σ lacks: no representation")
    ax4.axhline(config.poly_tol, color="k", lw=1, ls="--", label=f"poly_tol = {config.poly_tol:g}")
    ax4.set(yscale="log", xlabel="dimension d", ylabel="residual max_x |E gσ − P|",
            title="polynomial σ: residual per P")
    ax4.legend(fontsize=7)
  else:
    for ax in (ax3, ax4):
      ax.text(0.5, 0.5, "no polynomial σ in this run", ha="center", va="center",
              transform=ax.transAxes)
  for ax in axes.flat:
    ax.title.set_fontsize(7.5)
  _title(fig, summary)
  return fig


@PLOTTERS.register("rf_concentration")
def rf_concentration(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]
                     ) -> plt.Figure:
  """Per d: mean sup-error vs r for each P with its Thm 3.3 bound (dashed) and r^{-1/2};
  below, the sup-error as a fraction of the bound (max over draws) vs r."""
  cells = summary["cells"]
  ds = sorted({c["d"] for c in cells})
  fig, axes = plt.subplots(2, len(ds), figsize=(5.2 * len(ds), 8), squeeze=False)
  for col, d in enumerate(ds):
    ax, axf = axes[0, col], axes[1, col]
    cs = [c for c in cells if c["d"] == d]
    colors = plt.cm.tab10(np.arange(len(cs)) % 10)
    for c, color in zip(cs, colors):
      rv = np.asarray(c["r"], float)
      lo, hi = c["slope_interval"]
      ax.plot(rv, c["mean_sup_error"], "o-", color=color, ms=3,
              label=f"P{c['poly']}: slope {c['slope']:.2f} [{lo:.2f}, {hi:.2f}]")
      ax.plot(rv, c["bound"], "--", color=color, lw=1)
      axf.plot(rv, c["fraction_max_by_r"], "o-", color=color, ms=3,
               label=f"P{c['poly']}: C={c['sup_g']:.3g}")
    rv = np.asarray(cs[0]["r"], float)
    ax.plot(rv, cs[0]["mean_sup_error"][0] * np.sqrt(rv[0] / rv), "k:", lw=1,
            label=r"$\propto r^{-1/2}$")
    ax.set(xscale="log", yscale="log", xlabel="number of random features r",
           ylabel=f"sup-error (max over {config.num_test} x), mean over draws",
           title=f"{config.sigma}, d={d}, deg P ≤ {config.k}: dashed LC/√r(4+√(2log1/δ)), "
                 f"δ={config.delta}\n(slopes with {config.level:.0%} seed-bootstrap intervals)")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7)
    axf.axhline(1.0, color="r", lw=1, label="the bound")
    axf.set(xscale="log", yscale="log", xlabel="number of random features r",
            ylabel="sup-error / bound (max over draws)",
            title=f"d={d}: how tight the bound is (L = {cs[0]['lipschitz']:.3g})")
    axf.set_xscale("log", base=2)
    axf.legend(fontsize=7)
    for a in (ax, axf):
      a.title.set_fontsize(8)
  _title(fig, summary)
  return fig


_REGIME_STYLE = dict(full=("C0", "o-"), random_features=("C1", "s--"),
                     linearized=("C2", "^:"))


@PLOTTERS.register("polynomial_sgd")
def polynomial_sgd(config: mlc.ConfigDict, rows: list[dict],
                   summary: dict[str, Any]) -> plt.Figure:
  """Final-iterate test hinge vs width for the three regimes (each U_0) against
  L_D(W_0, U*) + ε and L_D(P) + ε with their standard errors; monitor curves at the widest r."""
  cells = summary["cells"]
  u0s = sorted({c["u0_norm"] for c in cells})
  eps = summary["epsilon"]
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
  first = [c for c in cells if c["u0_norm"] == u0s[0]]
  rs = [c["r"] for c in first]
  for k, u0 in enumerate(u0s):
    sel = [c for c in cells if c["u0_norm"] == u0]
    u0_text = "U0=0" if u0 == 0 else f"|U0|={u0:g}/√r"
    for regime, (color, style) in _REGIME_STYLE.items():
      ax1.errorbar([c["r"] for c in sel], [c[f"{regime}_final_test_hinge"] for c in sel],
                   yerr=[2 * c[f"{regime}_final_test_hinge_se"] for c in sel], fmt=style,
                   color=color, alpha=1.0 if k == 0 else 0.45, capsize=2,
                   label=f"{regime}, final iterate, {u0_text}")
  star = np.array([c["L_star"] for c in first])
  star_se = np.array([c["L_star_se"] for c in first])
  ax1.fill_between(rs, star - 2 * star_se, star + 2 * star_se, color="k", alpha=0.15)
  ax1.plot(rs, star, "k-", lw=2, label=f"L_D(W0, U*), ‖U*‖ ≤ {summary['C']:g}/√r (±2 s.e.)")
  ax1.plot(rs, star + eps, "k:", lw=1.2, label=f"L_D(W0, U*) + ε (ε = {eps:g})")
  for C, alpha in zip(sorted(first[0]["L_star_by_C"], key=float), (0.3, 0.5, 0.7, 0.9)):
    if float(C) != summary["C"]:
      ax1.plot(rs, [c["L_star_by_C"][C] for c in first], "k-", alpha=alpha, lw=0.8,
               label=f"L_D(W0, U*), C = {C}")
  lp = np.array([c["L_P"] for c in first])
  ax1.plot(rs, lp, "-", color="C4", lw=1.5, label="L_D(P)")
  ax1.plot(rs, lp + eps, ":", color="C4", lw=1.2, label="L_D(P) + ε")
  for c in first:
    if c["full_vs_rf"] == "coincide":
      ax1.axvspan(c["r"] / 1.4, c["r"] * 1.4, color="0.85", lw=0, zorder=0)
  ax1.set(xscale="log", xlabel="width r (shaded: regimes coincide)",
          ylabel=f"test hinge ({config.n_test} points)",
          title=f"sign(P), deg {config.degree}, d = {config.d}, σ = {config.activation}, "
                f"η·r = {config.lr_times_r:.3g}, T = {config.steps}")
  lo, hi = ax1.get_ylim()
  ax1.set_ylim(lo, hi + 0.6 * (hi - lo))       # room for the legend above the data
  ax1.legend(fontsize=6, ncol=2, loc="upper center")
  r_max = max(rs)
  for regime, (color, style) in _REGIME_STYLE.items():
    sel = [x for x in rows if x["r"] == r_max and x["regime"] == regime and "step" in x
           and x["u0_norm"] == u0s[0]]
    steps = sorted({x["step"] for x in sel})
    ax2.plot(steps, [np.mean([x["monitor_hinge"] for x in sel if x["step"] == s])
                     for s in steps], style, color=color, label=f"{regime} (monitor sample)")
    ax2.plot(steps[1:], [np.mean([x["train_hinge"] for x in sel if x["step"] == s])
                         for s in steps[1:]], "-", color=color, alpha=0.35,
             label=f"{regime} online train")
  top = [c for c in first if c["r"] == r_max][0]
  ax2.axhline(top["L_star"], color="k", lw=1.5, label=f"L_D(W0, U*), C = {summary['C']:g}")
  ax2.axhline(top["L_P"], color="C4", lw=1.5, label="L_D(P)")
  lo, hi = ax2.get_ylim()
  ax2.set_ylim(min(lo, top["L_star"] - 0.03), hi)
  ax2.set(xlabel="SGD step (batch 1)", ylabel="hinge loss",
          title=f"curves (never judged), r = {r_max}, "
                + ("U0 = 0" if u0s[0] == 0 else f"|U0| = {u0s[0]:g}/√r"))
  ax2.legend(fontsize=7)
  _title(fig, summary)
  return fig


@PLOTTERS.register("lazy_training")
def lazy_training(config: mlc.ConfigDict, rows: list[dict],
                  summary: dict[str, Any]) -> plt.Figure:
  """Movement, sign flips and full-vs-linearised gap vs width (log-log, seed means with the
  seeds' range) with the predicted slopes; each exponent's interval against its band; test
  errors of the three regimes."""
  fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.5))
  markers = dict(relu="o", sincos="s")
  colors = dict(w_move_abs="C0", sign_flips="C3", out_gap="C2")
  labels = dict(w_move_abs="‖W_T−W_0‖_F", sign_flips="sign-flip fraction",
                out_gap="‖N_full − N_lin‖/‖N_full‖")
  tol = summary.get("exponent_tolerance", config.exponent_tolerance)
  ticks, tick_labels = [], []
  for a_i, (act, v) in enumerate(summary["lazy"].items()):
    cs = v["cells"]
    rs = np.array([c["r"] for c in cs], float)
    mk = markers.get(act, "d")
    alpha = 0.9 if act == "relu" else 0.5
    for key, color in colors.items():
      e = v["exponents"][key]
      y = np.array([c[key] for c in cs])
      per_seed = [[float(x[key]) for x in rows if x.get("activation") == act
                   and x["r"] == c["r"] and x["regime"] == "full"] for c in cs]
      lo = [min(p) if p else np.nan for p in per_seed]
      hi = [max(p) if p else np.nan for p in per_seed]
      ax1.plot(rs, y, mk + "-", color=color, alpha=alpha,
               label=f"{labels[key]} [{act}] ∝ r^{e['slope']:.2f}")
      ax1.fill_between(rs, lo, hi, color=color, alpha=0.12)
      if e["predicted"] is not None and y[-1] > 0:
        ax1.plot(rs, y[-1] * (rs / rs[-1]) ** e["predicted"], ":", color=color, lw=1)
      if e.get("verdict") is None:
        continue
      pos = len(ticks)
      ticks.append(pos)
      tick_labels.append(f"{key}\n[{act}]")
      ax2.add_patch(matplotlib.patches.Rectangle((pos - 0.3, e["predicted"] - tol), 0.6,
                                                 2 * tol, color="0.85", zorder=0))
      ax2.plot([pos - 0.3, pos + 0.3], [e["predicted"]] * 2, "k-", lw=1)
      ax2.errorbar([pos], [e["slope"]], yerr=[[e["slope"] - e["lo"]], [e["hi"] - e["slope"]]],
                   fmt=mk, color=color, capsize=4,
                   label=None if a_i else f"{labels[key]}")
      ax2.annotate(e["verdict"], (pos, e["hi"]), textcoords="offset points", xytext=(0, 6),
                   ha="center", fontsize=7)
    for regime, (color, style) in _REGIME_STYLE.items():
      ax3.plot(rs, [c[f"{regime}_test_error"] for c in cs], color=color, marker=mk,
               ls="-" if act == "relu" else "--", alpha=alpha, label=f"{regime} [{act}]")
  ax1.plot([], [], "k:", label="predicted slope, through the largest width")
  ax1.set(xscale="log", yscale="log", xlabel="width r")
  ax1.set_title(f"η·r = {config.lr_times_r:g}, T = {config.steps}: seed means, range shaded",
                fontsize=9)
  ax1.legend(fontsize=6.5)
  ax2.set_xticks(ticks)
  ax2.set_xticklabels(tick_labels, fontsize=7)
  ax2.set(ylabel="exponent in r")
  ax2.set_title(f"fitted exponents, {100 * config.interval_level:.0f}% seed-bootstrap "
                f"interval; grey: predicted ± {tol:g}", fontsize=9)
  ax3.set(xscale="log", xlabel="width r", ylabel="test 0-1 error")
  ax3.set_title(f"polynomial task (d = {config.d}, degree {config.degree})", fontsize=9)
  ax3.legend(fontsize=7)
  _title(fig, summary)
  return fig


_RUN_STYLE = {("full", "lazy"): ("C0", "o-"), ("full", "mean_field"): ("C0", "o--"),
              ("random_features", "frozen"): ("C1", "s-"),
              ("linearized", "lazy"): ("C2", "^-"), ("linearized", "mean_field"): ("C2", "^--")}


def _pos(v: Any, floor: float) -> float:
  """v floored for a log axis; NaN (not drawn) for a diverged run (None)."""
  return float("nan") if v is None else max(float(v), floor)


def _run_label(regime: str, family: str) -> str:
  return regime if family == "frozen" else f"{regime}, {family.replace('_', '-')} steps"


@PLOTTERS.register("neuron_contrast")
def neuron_contrast(config: mlc.ConfigDict, rows: list[dict],
                    summary: dict[str, Any]) -> plt.Figure:
  """Error on every ψ-neuron at the largest width (seed 0); error on the hardest ψ-neuron vs
  width for each regime and step sizes, with the random-features best readout; training
  curves on the hardest neuron at the largest width."""
  fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 5))
  eps = summary["threshold"]
  cells = summary["cells"]
  r_max = max(c["r"] for c in cells)
  floor = eps * 1e-4
  for (regime, family), (color, style) in _RUN_STYLE.items():
    sel = sorted((x for x in rows if x["r"] == r_max and x["seed"] == 0
                  and x["regime"] == regime and x["step_sizes"] == family),
                 key=lambda x: x["kink"])
    ax1.plot([x["kink"] for x in sel], [_pos(x["error"], floor) for x in sel], style,
             color=color, ms=4, label=_run_label(regime, family))
    if regime == "random_features":
      ax1.plot([x["kink"] for x in sel], [max(float(x["best_fit_error"]), floor) for x in sel],
               "x:", color=color, label="random features: best readout (exact, any weights)")
  hard = [c for c in cells if c["r"] == r_max and c["seed"] == 0]
  if hard:
    ax1.axvline(hard[0]["kink"], color="0.5", lw=1, ls="--", label="hardest ψ-neuron")
  ax1.axhline(eps, color="k", lw=1, ls=":", label=f"ε = 1/(50a²) = {eps:.2g}")
  unresolved = [x["kink"] for x in rows if x["r"] == r_max and x["seed"] == 0
                and x["regime"] == "random_features" and not x.get("mc_resolved", True)]
  if unresolved:
    ax1.axvspan(min(unresolved) - 0.1, max(unresolved) + 0.1, color="0.9", zorder=0,
                label="too few active test inputs (Monte Carlo unresolved)")
  ax1.set(yscale="log", xlabel="kink c_j / ‖w*‖", ylabel="test error E(N − f*_j)²")
  ax1.set_title(f"all {summary['num_neurons']} ψ-neurons, d = {config.d}, r = {r_max}, seed 0",
                fontsize=9)
  ax1.legend(fontsize=6.5)
  rs = sorted({c["r"] for c in cells})

  def per_r(get):
    vals = [[get(c) for c in cells if c["r"] == r] for r in rs]
    return ([float(np.mean(v)) for v in vals], [float(np.min(v)) for v in vals],
            [float(np.max(v)) for v in vals])    # NaN where a seed diverged

  series = [(("full", "lazy"), lambda c: c["lazy"]["full"]["error"]),
            (("full", "mean_field"), lambda c: c["mean_field"]["full"]["error"]),
            (("random_features", "frozen"), lambda c: c["random_features"]["error"]),
            (("linearized", "lazy"), lambda c: c["lazy"]["linearized"]["error"]),
            (("linearized", "mean_field"), lambda c: c["mean_field"]["linearized"]["error"])]
  for run, get in series:
    color, style = _RUN_STYLE[run]
    mean, lo, hi = per_r(lambda c: _pos(get(c), floor))
    ax2.errorbar(rs, mean, yerr=[np.subtract(mean, lo), np.subtract(hi, mean)], fmt=style,
                 color=color, capsize=3, label=_run_label(*run))
  mean, lo, hi = per_r(lambda c: max(c["rf_best_fit_lower"], floor))
  ax2.plot(rs, mean, "x:", color="C1", label="random features: certified best readout")
  lin = [(c["r"], c["lin_best_fit_error"]) for c in cells if c["lin_best_fit_error"] is not None]
  if lin:
    ax2.plot(*zip(*lin), "+", color="C2", ls="none",
             label="linearised: best readout (in-sample)")
  ax2.axhline(eps, color="k", lw=1, ls=":", label="ε")
  ax2.set(xscale="log", yscale="log", xlabel="width r", ylabel="test error on the hardest neuron")
  ax2.set_title(f"hardest ψ-neuron (seed mean, range): lazy {summary['verdict']}, "
                f"mean-field {summary['mean_field_verdict']}", fontsize=9)
  ax2.legend(fontsize=6.5)
  for c in hard:
    for (regime, family), (color, style) in _RUN_STYLE.items():
      sel = [x for x in rows if x["r"] == r_max and x["seed"] == c["seed"] and x["j"] == c["j"]
             and x["regime"] == regime and x["step_sizes"] == family]
      for x in sel:
        ax3.plot(x["curve_steps"], [_pos(v, floor) for v in x["curve_error"]],
                 style, color=color, ms=3, label=_run_label(regime, family))
  ax3.axhline(eps, color="k", lw=1, ls=":", label="ε")
  ax3.set(yscale="log", xlabel="SGD step", ylabel=f"error on {config.n_log} curve inputs")
  ax3.set_title(f"hardest ψ-neuron, r = {r_max}, seed 0: batch {config.batch}, "
                f"η·r = {config.lr_times_r:g}", fontsize=9)
  ax3.legend(fontsize=6.5)
  _title(fig, summary)
  return fig
