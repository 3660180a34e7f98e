"""Section 2: lazy training — movement, sign flips and the linearised twin vs width;
then the hard neuron, where the full net should learn and its lazy twins should not.

rfjax --config=configs/lazy_training.py --workdir=runs/lazy_training
rfjax --config=configs/lazy_training.py:smoke --workdir=/tmp/smoke
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "lazy_training"
  c.seed = 0                       # also fixes the polynomial P (as in polynomial_sgd)
  c.d = 8
  c.degree = 2
  c.activations = ("relu", "sincos")
  c.widths = (64, 512, 4096)      # 2^6 .. 2^12
  c.num_seeds = 2
  c.steps = 2000                   # fixed T for every width
  c.lr_times_r = 0.5               # η = lr_times_r / r (the theory's η ∝ 1/r)
  c.n_test = 1024
  c.n_probe = 256
  c.neuron_d = 8                   # the hard neuron of PAPER §4.3 at d = 8
  c.neuron_kink = 1.0              # kink c ≈ kink·‖w*‖ (ψ offset nearest it: c = 7 at d = 8)
  c.neuron_widths = (64, 256, 1024)
  c.neuron_steps = 4000
  c.neuron_log_every = 500
  c.neuron_batch = 16
  c.neuron_lr_times_r = 1.0        # c: η_U = c/r; η_W = c·r (mean_field) or c/r (lazy)
  c.neuron_w_lr_scaling = "mean_field"   # first layer: "mean_field" (learns) or "lazy"
  c.w_move_exponent_max = -1.0     # verdict: ‖W_T−W_0‖_F/‖W_0‖_F ∝ r^a with a < this
  c.sign_flips_exponent_max = 0.0  # verdict: ReLU sign flips ∝ r^a with a < this
  c.out_gap_exponent_max = 0.0     # verdict: full-vs-linearised gap ∝ r^a with a < this
  c.neuron_tolerance = 1e-4        # "learned": relative test error ≤ this
  c.neuron_lin_fit_samples_per_feature = 8   # linearised twin's best fit: n = 8·r(d+1) ...
  c.neuron_lin_fit_max_features = 2304       # ... computed while r(d+1) ≤ this
  if variant == "smoke":
    c.widths, c.num_seeds, c.steps, c.n_test, c.n_probe = (16, 64), 2, 100, 128, 64
    c.activations = ("relu",)
    c.neuron_widths, c.neuron_steps, c.neuron_log_every = (16,), 100, 50
    c.neuron_lin_fit_samples_per_feature = 4
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
