"""Experiments, one module per claim of the paper, in a registry.

An experiment is a grid of cells (d, r, feature, ...). `run_cell` computes one cell
for all its seeds at once (through `rfjax.sweep`) and returns one row per seed;
`summarize` turns all rows into the claim's verdict; `rfjax.plots` draws the figure.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import ml_collections as mlc

from rfjax import registry
from rfjax import results

Row = dict[str, Any]


class Experiment(NamedTuple):
  """The pure parts of an experiment."""
  validate: Callable[[mlc.ConfigDict], None]          # raises validation.ConfigError
  cells: Callable[[mlc.ConfigDict], list[dict[str, Any]]]
  run_cell: Callable[[mlc.ConfigDict, dict[str, Any], jax.Array], list[Row]]
  summarize: Callable[[mlc.ConfigDict, list[Row]], dict[str, Any]]
  claim: str = ""
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


def run(name: str, config: mlc.ConfigDict, key: jax.Array) -> list[Row]:
  """All rows of experiment `name` (no files): the pure form of a run."""
  exp = get(name)
  exp.validate(config)
  rows = []
  for cell in exp.cells(config):
    rows.extend(exp.run_cell(config, cell, cell_prng_key(key, name, cell)))
  return rows


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
