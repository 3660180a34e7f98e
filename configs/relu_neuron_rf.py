"""Thms. 4.2/4.3: r·min B needed to fit ψ_{w*} (or the hard neuron) with random features.

rfjax --config=configs/relu_neuron_rf.py --workdir=runs/relu_neuron_rf
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "relu_neuron_rf"
  c.seed = 0
  c.ds = (2, 3, 4, 6, 8, 12)
  c.rs = (64, 256, 1024)
  c.big_r = 4096                 # ... and this r at the d where ψ can still be reached
  c.big_r_ds = (2, 3, 4)
  c.features = ("relu_biased", "deep_net", "kernel_points")
  c.targets = ("psi", "neuron")
  c.neuron_kink = 1.0            # the rescaled neuron's kink c_j ≈ neuron_kink·‖w*‖
  c.num_seeds = 1
  c.num_B = 10
  c.rB_range = (1.0, 1e6)        # r·B grid (times a = 4m+2 for the rescaled neuron)
  c.num_iters = 100              # box-fit iterations per B (warm-started along B)
  c.mc_ratio = 16                # Monte Carlo samples per feature (sample-mode families)
  c.mc_chunk = 4096
  c.sample_max_d = 3             # sample-mode families only up to this d ...
  c.sample_max_r = 256           # ... and this r
  if variant == "smoke":
    c.ds, c.rs, c.features = (2, 3), (128,), ("relu_biased", "deep_net")
    c.big_r, c.big_r_ds = 128, ()
    c.num_B, c.num_iters, c.mc_ratio, c.mc_chunk = 7, 50, 8, 512
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
