"""Experiments, one module per claim of the paper, in a registry.

An experiment is a grid of cells (d, r, feature, ...). `run_cell` computes one cell
for all its seeds at once (through `rfjax.sweep`) and returns one row per seed;
`summarize` turns all rows into the claim's verdict; `figure` draws them. One module holds
all of an experiment (its cells, run, summary, verdict, row-id fields and figure) and
registers it here; the runner and `rfjax.plots` know no experiment's fields.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple, TypedDict

import jax
import ml_collections as mlc

from rfjax import registry
from rfjax import results

Row = dict[str, Any]


class Summary(TypedDict, total=False):
  """The keys every summary carries (rfjax.runner.check_verdict checks the verdict ones), beside
  the experiment's own quantities (documented in its `summarize`), written to summary.json."""
  claim: str                   # the statement of the paper tested, with its number
  prediction: str              # what the statement predicts for this run, in numbers
  measured: str                # what the run measured, in one line (the report's table)
  verdict: str                 # holds / fails / inconclusive (rfjax.verdicts)
  holds: bool                  # verdict == "holds"
  would_fail_if: str           # the result that would have made it fail
  departures: str              # how the run departs from the theorem's regime
  verdict_reasons: list[str]   # why it fails or is inconclusive


class Experiment(NamedTuple):
  """The pure parts of an experiment."""
  validate: Callable[[mlc.ConfigDict], None]          # raises validation.ConfigError
  cells: Callable[[mlc.ConfigDict], list[dict[str, Any]]]
  run_cell: Callable[[mlc.ConfigDict, dict[str, Any], jax.Array], list[Row]]
  summarize: Callable[[mlc.ConfigDict, list[Row]], Summary]
  claim: str = ""
  # figure(config, rows, summary) -> a matplotlib Figure (rfjax.plots.save writes it).
  figure: Callable[[mlc.ConfigDict, list[Row], Summary], Any] | None = None
  # The row fields that tell a cell's rows apart, in the order they appear in a row key
  # (`<cell key>/<field>=<value>...`, fields of the cell itself left out). Rows that these
  # fields do not tell apart are keyed by their position in the cell instead.
  row_id_fields: tuple[str, ...] = ()
  # True if run_cell takes `checkpoint_dir=`: a directory (kept by the runner until the
  # cell's rows are written) where it saves long computations and resumes them from.
  checkpoints: bool = False


EXPERIMENTS: registry.Registry[Experiment] = registry.Registry("experiment")


def get(name: str) -> Experiment:
  return EXPERIMENTS.get(name)


def names() -> list[str]:
  return EXPERIMENTS.names()


def cell_prng_key(root: jax.Array, experiment: str, cell: dict[str, Any]) -> jax.Array:
  """A key for one cell that depends on the cell's content, not its position."""
  tag = zlib.crc32(results.cell_key(experiment, cell).encode()) & 0x7FFFFFFF
  return jax.random.fold_in(root, tag)


def run_cells(name: str, config: mlc.ConfigDict, key: jax.Array
              ) -> list[tuple[dict[str, Any], list[Row]]]:
  """(cell, its rows) for every cell of experiment `name`, in grid order (no files)."""
  exp = get(name)
  exp.validate(config)
  return [(cell, exp.run_cell(config, cell, cell_prng_key(key, name, cell)))
          for cell in exp.cells(config)]


def run(name: str, config: mlc.ConfigDict, key: jax.Array) -> list[Row]:
  """All rows of experiment `name` (no files): the pure form of a run."""
  return [row for _, rows in run_cells(name, config, key) for row in rows]


# Built-in experiments register themselves on import.
from rfjax.experiments import linear_rf  # noqa: E402,F401
from rfjax.experiments import psi_correlation  # noqa: E402,F401
from rfjax.experiments import relu_neuron_rf  # noqa: E402,F401
from rfjax.experiments import neuron_gd  # noqa: E402,F401
from rfjax.experiments import integral_rep  # noqa: E402,F401
from rfjax.experiments import polynomial_sgd  # noqa: E402,F401
from rfjax.experiments import rf_concentration  # noqa: E402,F401
from rfjax.experiments import lazy_training  # noqa: E402,F401
from rfjax.experiments import neuron_contrast  # noqa: E402,F401
