"""Section 2: lazy training — movement, sign flips and the linearised twin against width, each
exponent with a seed-bootstrap interval against its predicted value.

rfjax --config=configs/lazy_training.py --workdir=runs/lazy_training
rfjax --config=configs/lazy_training.py:smoke --workdir=/tmp/smoke

The predicted exponents (docs/theory.md, 'Lazy training: predicted exponents') are r → ∞ rates
at fixed T and η·r, so the widths start where W moves by a few percent (at r = 64 it moves by
about 30% of ‖W_0‖_F, outside the regime the prediction is about). The probe set is large
enough that the ReLU sign flips at the largest width number in the tens per seed.
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "lazy_training"
  c.seed = 0                       # also fixes the polynomial P (as in polynomial_sgd)
  c.d = 8
  c.degree = 2
  c.activations = ("relu", "sincos")
  c.widths = (256, 1024, 4096, 16384)   # 2^8 .. 2^14
  c.num_seeds = 4
  c.steps = 2000                   # fixed T for every width
  c.lr_times_r = 0.5               # η = lr_times_r / r (the theory's η ∝ 1/r)
  c.n_test = 1024
  c.n_probe = 1024
  # Verdict criteria (fixed before the run): predicted exponents in r, the band around them
  # and the bootstrap interval over seeds.
  c.w_move_abs_exponent = -1.5     # ‖W_T − W_0‖_F (the proof of Thm 3.2)
  c.sign_flips_exponent = -2.0     # ReLU sign-flip fraction
  c.out_gap_exponent_relu = -3.5   # ‖N_full − N_lin‖/‖N_full‖, ReLU
  c.out_gap_exponent_smooth = -4.0  # the same, analytic σ
  c.exponent_tolerance = 0.25
  c.interval_level = 0.9
  c.num_boot = 2000
  if variant == "smoke":
    c.widths, c.num_seeds, c.steps, c.n_test, c.n_probe = (16, 64), 2, 100, 128, 64
    c.activations, c.num_boot = ("relu",), 200
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
