"""Prop. 4.4: E_{w*}|<f, ψ_{w*}>|/‖f‖ against d and the bound √(20 e^{−cd}), exact and Monte Carlo.

rfjax --config=configs/psi_correlation.py --workdir=runs/psi

The verdict's criteria are fixed here, before the run (rfjax/experiments/psi_correlation.py):
holds iff ψ equals its ReLU sum to psi_sum_tol (P1), min ‖ψ‖² >= psi_norm_min (P2), and every
exact family has >= min_resolved_ds resolved d with the interval_level bootstrap interval of c
(m_d ≈ √(C e^{−cd})) entirely > 0; fails if P1 / P2 fail or some exact family's interval lies
entirely <= 0; inconclusive otherwise. Monte Carlo families are reported, never deciding.
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "psi_correlation"
  c.seed = 0
  c.ds = (2, 3, 4, 6, 8, 10, 12, 16, 20)   # exact mode
  # Ridge families (ρ-integral) and coupling (exactly the linear feature's value / √2).
  c.exact_features = ("relu_sphere", "relu_biased", "linear_sphere", "coupling")
  c.mc_ds = (2, 3, 4)                          # Monte Carlo resolves only ~1/sqrt(n)
  c.mc_features = ("deep_net", "kernel_points", "tanh_cube", "relu_biased")
  c.num_seeds = 8                              # exact mode: independent feature / w* draws
  c.mc_num_seeds = 2                           # Monte Carlo: independent draws
  c.num_features = 4                           # features per draw
  c.num_w_star = 64                            # sampled w* per draw
  c.mc_n = 2**18
  c.mc_chunk = 2**13
  # Verdict criteria (fixed before the run).
  c.min_resolved_ds = 3                        # resolved d needed to fit a rate
  c.interval_level = 0.9                       # bootstrap interval of c (over the seeds)
  c.num_boot = 2000                            # bootstrap replicates
  c.psi_sum_tol = 1e-12                        # P1: max |ψ − its ReLU sum|
  c.psi_norm_min = 1 / 6                       # P2: ‖ψ_{w*}‖² >= 1/6
  c.mc_resolve_factor = 3.0                    # a Monte Carlo value is resolved above 3 s.e.
  if variant == "smoke":
    # ReLU exact mode compiles per d (~10 s each): the smoke keeps to linear and coupling.
    c.ds, c.exact_features = (2, 3, 5), ("linear_sphere", "coupling")
    c.mc_ds, c.mc_features = (2,), ("deep_net",)
    c.num_seeds, c.mc_num_seeds, c.num_features, c.num_w_star = 2, 2, 4, 8
    c.mc_n, c.mc_chunk, c.num_boot = 2**12, 2**10, 200
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
