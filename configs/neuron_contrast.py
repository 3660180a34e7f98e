"""The neuron contrast: every ψ-neuron, a width-r net trained in full against its lazy twins.

rfjax --config=configs/neuron_contrast.py --workdir=runs/neuron_contrast
rfjax --config=configs/neuron_contrast.py:smoke --workdir=/tmp/smoke

Everything below is fixed before the run (rfjax/experiments/neuron_contrast.py):
- targets: all a = 4m + 2 ψ-neurons [<w*, x> − c_j]_+ at d (‖w*‖ = d, m = ⌈d²/4⌉);
- threshold: the paper's per-neuron error neuron_eps / a² with neuron_eps = 1/50 (the proof of
  the limits theorem: each neuron of ψ to 1/(50a²), i.e. the rescaled neuron to 1/50);
- step sizes: η·r = lr_times_r = 0.5, the η·r of the lazy-regime experiments (lazy_training,
  polynomial_sgd); lazy η_W = η_U = 0.5/r (the verdict), mean-field η_W = 0.5·r, η_U = 0.5/r;
- steps and batch: 2000 steps of batch 16, set by the time budget, not by any outcome;
- the hardest neuron: the largest certified error of the random-features best readout;
- resolution: 3 standard errors (as psi_correlation's Monte Carlo).
d = 4 keeps all 18 ψ-neurons × 5 runs × 3 widths within the time budget; the summary reports
whether the random-features twin can fit ψ itself to 1/6 there (docs/theory.md, 'The neuron
contrast').
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "neuron_contrast"
  c.seed = 0
  c.d = 4
  c.widths = (64, 256, 1024)
  c.num_seeds = 2
  c.steps = 2000
  c.batch = 16
  c.lr_times_r = 0.5               # lazy: η_W = η_U = 0.5/r; mean field: η_W = 0.5·r, η_U = 0.5/r
  c.num_logs = 8                   # curve points (error on n_log inputs)
  c.n_test = 2**14                 # Monte Carlo test inputs (shared by regimes and neurons)
  c.n_log = 256                    # curve inputs (other than the test inputs)
  # Verdict criteria (fixed before the run).
  c.neuron_eps = 1 / 50            # the paper's: ε = (1/50)/a² per ψ-neuron
  c.resolve_z = 3.0                # a comparison counts when resolved by 3 standard errors
  c.min_active = 100               # a neuron's test error is resolved when at least this many
                                   # test inputs are expected on its active side
  # The linearised twin's best readout (context): in-sample least squares over the r(d+1)
  # coupling features on 8·r(d+1) inputs, computed while r(d+1) ≤ lin_fit_max_features.
  c.lin_fit_samples_per_feature = 8
  c.lin_fit_max_features = 1280
  if variant == "smoke":
    c.d, c.steps, c.batch, c.num_logs = 2, 100, 8, 2
    c.widths, c.n_test, c.n_log, c.lin_fit_samples_per_feature = (16,), 1024, 128, 4
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
