"""Thms 3.1/3.2: SGD on the two-layer net learns sign(P(x)) for a random degree-2 P.

rfjax --config=configs/polynomial_sgd.py --workdir=runs/polynomial_sgd
rfjax --config=configs/polynomial_sgd.py:smoke --workdir=/tmp/smoke
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "polynomial_sgd"
  c.seed = 0                      # also fixes the polynomial P
  c.d = 8
  c.degree = 2
  c.activation = "sincos"         # σ(z) = sin z + cos z: analytic, L = √2, σ(0) = 1
  c.widths = (64, 256, 1024, 4096, 16384)
  c.num_seeds = 2
  c.steps = 4000                  # fixed T (the theory's T is recorded in the summary)
  c.log_every = 500
  c.checkpoint_every = 1000       # save the training state (orbax) every N steps; 0 = off
  c.batch = 1                     # a fresh sample per step (PAPER §3.0)
  c.lr_times_r = 0.5              # η = lr_times_r / r: the theory's η ∝ 1/r
  c.n_test = 1024
  c.n_probe = 256
  c.n_fit = 1024                  # fit sample of the best readout U*
  c.fit_iters = 600
  c.fit_mu = 0.02                 # smoothing of the hinge in the U* fit
  c.C = 32.0                      # ‖U*‖ ≤ C/√r
  c.C_grid = (4.0, 16.0)      # L_D(W_0, U*) also reported at these C
  c.epsilon = 0.05
  c.rf_tolerance = 0.01           # "full beats or matches RF": full ≤ RF + this
  if variant == "smoke":
    c.widths, c.num_seeds, c.steps, c.log_every = (16, 64), 2, 200, 50
    c.checkpoint_every = 100
    c.n_test, c.n_probe, c.n_fit, c.fit_iters, c.C_grid = 256, 64, 256, 50, (2.0,)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
