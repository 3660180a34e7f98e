"""Every experiment of the paper at laptop scale.

rfjax --config=configs/paper.py --workdir=runs/paper --jobs=2
"""
import importlib.util
import os

import ml_collections as mlc

EXPERIMENTS = (
    # Section 3: the power of random features.
    "integral_rep", "rf_concentration", "polynomial_sgd", "lazy_training",
    # Section 4: their limits, and the contrast with gradient descent.
    "linear_rf", "psi_correlation", "relu_neuron_rf", "neuron_gd", "neuron_contrast",
)


def _load(name: str):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"rfjax_config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.runs = mlc.ConfigDict({name: _load(name).get_config(variant) for name in EXPERIMENTS})
  # The order to run them in: longest first (wall times of a cold run on 2 cores), so that
  # `--jobs=2` ends both processes close together. Rows do not depend on it.
  c.order = ("relu_neuron_rf", "polynomial_sgd", "psi_correlation", "neuron_gd",
             "integral_rep", "neuron_contrast", "lazy_training", "linear_rf",
             "rf_concentration")
  return c
