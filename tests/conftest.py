"""Strict test settings: float64 available, no silent rank promotion."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import importlib.util  # noqa: E402
import pathlib  # noqa: E402

import pytest  # noqa: E402

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
