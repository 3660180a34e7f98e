"""Shared drawing helpers: a figure written atomically, the verdict title, shared styles.

Each experiment draws its own figure (`Experiment.figure`, in its module); `save` looks it up
by name and writes it. Importing this module sets no matplotlib backend (a notebook keeps its
own); the command line asks for Agg through MPLBACKEND.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

import matplotlib.pyplot as plt
import ml_collections as mlc

# The three training regimes' (colour, line style), shared by the figures that compare them.
REGIME_STYLE = dict(full=("C0", "o-"), random_features=("C1", "s--"), linearized=("C2", "^:"))


def draw(name: str, config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]
         ) -> plt.Figure:
  """Experiment `name`'s figure of `rows` and `summary`, laid out (not written)."""
  from rfjax import experiments          # experiments import this module for its helpers
  exp = experiments.get(name)
  if exp.figure is None:
    raise ValueError(f"experiment {name!r} has no figure (register it with figure=...)")
  fig = exp.figure(config, rows, summary)
  fig.tight_layout()
  return fig


def write(fig: plt.Figure, path: str) -> None:
  """Writes `fig` to `path` (PNG) atomically and closes it."""
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


def save(name: str, config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any],
         path: str) -> None:
  """Draws experiment `name`'s figure and writes it to `path` (PNG) atomically."""
  write(draw(name, config, rows, summary), path)


def title(fig: plt.Figure, summary: dict[str, Any]) -> None:
  """'<experiment>: prediction holds / FAILS / inconclusive' from summary['verdict'] (from
  summary['holds'] for a summary written before verdicts)."""
  verdict = summary.get("verdict")
  if verdict not in ("holds", "fails", "inconclusive"):
    verdict = "holds" if summary.get("holds") else "fails"
  shown = "FAILS" if verdict == "fails" else verdict
  fig.suptitle(f"{summary.get('experiment', '')}: prediction {shown}", fontsize=11)
