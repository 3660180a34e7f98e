"""Prop. 4.4: E_{w*}|<f, ψ_{w*}>| against d, exact mode and Monte Carlo.

rfjax --config=configs/psi_correlation.py --workdir=runs/psi
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "psi_correlation"
  c.seed = 0
  c.ds = (2, 3, 4, 6, 8, 10, 12, 16, 20)   # exact mode
  c.exact_features = ("relu_sphere", "relu_biased", "linear_sphere")
  c.mc_ds = (2, 3, 4)                          # Monte Carlo resolves only ~1/sqrt(n)
  c.mc_features = ("deep_net", "coupling", "kernel_points", "relu_biased")
  c.num_seeds = 2                              # independent feature / w* draws
  c.num_features = 4                           # features per draw
  c.num_w_star = 64                            # sampled w* per draw
  c.mc_n = 2**18
  c.mc_chunk = 2**13
  if variant == "smoke":
    c.ds, c.exact_features, c.mc_ds = (2, 5), ("relu_biased", "linear_sphere"), (2,)
    c.mc_features, c.num_seeds, c.num_features, c.num_w_star = ("deep_net",), 2, 4, 8
    c.mc_n, c.mc_chunk = 2**12, 2**10
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
