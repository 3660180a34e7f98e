"""Strict test settings: float64 available, no silent rank promotion."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import copy  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rfjax import experiments  # noqa: E402
from rfjax import results  # noqa: E402

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def load_config(name: str, variant: str = ""):
  """configs/<name>.py's get_config(variant), loaded by path like the command line does."""
  spec = importlib.util.spec_from_file_location(f"_test_config_{name}", CONFIGS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


@pytest.fixture
def smoke_config():
  """smoke_config(name) -> the experiment's smoke config."""
  return lambda name: load_config(name, "smoke")


# `experiments.run_cells` (and so `experiments.run`) memoized for this test session on
# (name, config, key): a run is a pure function of them, so every test of an experiment's
# smoke run (its own tests; the verdict, row-key and figure tests of all experiments) shares
# one computation whichever runs first. Callers get copies.
_RUNS: dict[tuple[str, str, bytes], list] = {}
_run_cells = experiments.run_cells


def _memoized_run_cells(name, config, key):
  memo = (name, json.dumps(results.to_json(config.to_dict()), sort_keys=True),
          np.asarray(jax.random.key_data(key)).tobytes())
  if memo not in _RUNS:
    _RUNS[memo] = _run_cells(name, config, key)
  return copy.deepcopy(_RUNS[memo])


experiments.run_cells = _memoized_run_cells


def smoke_run(name: str):
  """(config, [(cell, rows)]): experiment `name`'s smoke config and its run at key(seed)."""
  config = load_config(name, "smoke")
  return config, experiments.run_cells(name, config, jax.random.key(config.seed))
