"""neuron_gd: the exact relative error against Monte Carlo; SGD learns the hard neuron."""
import jax
import jax.numpy as jnp
import numpy as np

from rfjax import experiments
from rfjax.experiments import neuron_gd


def test_exact_relative_error_matches_monte_carlo():
  rng = np.random.default_rng(1)
  d = 5
  w, ws = rng.standard_normal(d), 3 * rng.standard_normal(d)
  b, bs = 0.4, -1.2
  x = rng.standard_normal((2_000_000, d))
  y = np.maximum(x @ ws + bs, 0)
  n = np.maximum(x @ w + b, 0)
  mc = np.mean((n - y) ** 2) / np.mean(y**2)
  exact = float(neuron_gd.relative_error(jnp.asarray(w), jnp.asarray(b), jnp.asarray(ws),
                                         jnp.asarray(bs)))
  np.testing.assert_allclose(exact, mc, rtol=1e-2)
  assert float(neuron_gd.relative_error(jnp.asarray(ws), jnp.asarray(bs), jnp.asarray(ws),
                                        jnp.asarray(bs))) < 1e-12


def test_targets_are_psi_offsets_in_the_bulk():
  specs = neuron_gd.target_specs(6, (-1.0, 0.0, 1.0), ("psi_neuron", "rescaled_neuron"))
  assert len(specs) == 6
  for s in specs:
    assert abs(s["c"]) <= 2 * 6
    assert s["scale"] == (1.0 if s["kind"] == "psi_neuron" else 4 * 9 + 2)


def test_smoke_sgd_learns_and_random_features_do_not(smoke_config):
  config = smoke_config("neuron_gd")
  rows = experiments.run("neuron_gd", config, jax.random.key(0))
  summary = neuron_gd.summarize(config, rows)
  assert summary["holds"], summary["measured"]
  for cell in summary["cells"]:
    assert cell["median_final_relative_error"] < cell["rf_median_relative_error"]
