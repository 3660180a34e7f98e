"""relu_neuron_rf (Thms. 4.2/4.3): exact-mode fits against Monte Carlo fits; the verdict."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import experiments
from rfjax.experiments import relu_neuron_rf as rn


def test_exact_and_sample_mode_fits_agree():
  d, r, key = 2, 16, jax.random.key(3)
  grids = {t: jnp.asarray(np.geomspace(0.01, 100.0, 5)) for t in ("psi",)}
  common = dict(d=d, r=r, feature="relu_biased", kinds=("psi",), kink=1.0, num_iters=400)
  exact = rn._exact_seed(key, grids, **common)["psi"]
  sample = jax.jit(functools.partial(rn._sample_seed, n=2**18, chunk=2**14, **common))(
      key, grids)["psi"]
  # Same features and w*; Monte Carlo moments on 2^18 inputs.
  np.testing.assert_allclose(sample["yy"], exact["yy"], rtol=2e-2)
  np.testing.assert_allclose(sample["error_B"], exact["error_B"], rtol=5e-2, atol=5e-3)
  np.testing.assert_allclose(sample["ls_error"], exact["ls_error"], rtol=0.1, atol=5e-3)
  # The certified lower bound never exceeds the error actually reached.
  assert np.all(exact["fit_error_B"] - exact["gap_B"] <= exact["fit_error_B"] + 1e-12)
  # More room (larger B) never fits worse.
  assert np.all(np.diff(np.asarray(exact["error_B"])) <= 1e-9)


def test_smoke_reaches_psi_only_at_small_d(smoke_config):
  config = smoke_config("relu_neuron_rf")
  rows = experiments.run("relu_neuron_rf", config, jax.random.key(0))
  summary = rn.summarize(config, rows)
  psi_main = summary["table"]["relu_biased"]["psi"]
  assert psi_main[2]["reached"]                 # d = 2: 1/6 is within reach
  assert psi_main[3]["best_relative_error"] > psi_main[2]["best_relative_error"]
  assert {"d", "r", "feature", "target", "B", "error", "relative_error"} <= set(rows[0])
