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
