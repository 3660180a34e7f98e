"""The contrast: SGD on one ReLU neuron learns the hard targets of Section 4.

rfjax --config=configs/neuron_gd.py --workdir=runs/neuron_gd
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "neuron_gd"
  c.seed = 0
  c.ds = (2, 4, 8, 16, 32, 64)
  c.num_seeds = 16
  c.kinds = ("psi_neuron", "rescaled_neuron")
  c.kinks = (-1.0, 0.0, 1.0)        # kink c_j ≈ kink·‖w*‖: in the bulk of the data
  c.steps = 600
  c.batch = 256
  c.lr = 0.5
  c.init_scale = 0.01               # w_0 ~ N(0, init_scale² I/d), b_0 = 1
  c.tolerance = 1e-2                # relative error to reach
  c.rf_feature = "relu_biased"      # the random-features comparison (exact mode)
  c.rf_r = 1024
  c.rf_seeds = 2
  if variant == "smoke":
    c.ds, c.num_seeds, c.steps, c.kinks = (2, 8), 4, 400, (0.0, 1.0)
    c.rf_r, c.rf_seeds = 64, 1
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
