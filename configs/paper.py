"""Every experiment of the paper at laptop scale (about 12 minutes on 2 CPU cores).

rfjax --config=configs/paper.py --workdir=runs/paper
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
  c.order = EXPERIMENTS            # the order to run them in (the paper's)
  return c
