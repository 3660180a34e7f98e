"""psi_correlation (Prop. 4.4): exact mode against Monte Carlo on the same draws."""
import functools

import jax
import numpy as np

from rfjax import psi
from rfjax import sweep
from rfjax.experiments import psi_correlation as pc


def test_exact_matches_monte_carlo_on_the_same_features_and_w_star():
  d, key = 2, jax.random.key(7)
  exact = pc._exact_seed(key, d=d, feature="relu_biased", num_features=4, num_w_star=8)
  mc = pc._mc_seed(key, d=d, feature="relu_biased", num_features=4, num_w_star=8,
                   n=2**18, chunk=2**14)
  # Same features and w*: the sampled-w* exact mean and the Monte Carlo mean agree
  # within the Monte Carlo error (mean of |corr| moves by at most the mean s.e.).
  assert abs(float(exact["exact_sampled"]) - float(mc["monte_carlo"])) < 4 * float(mc["stderr"])
  assert float(mc["stderr"]) < 0.1 * float(mc["monte_carlo"])


def test_psi_checks_hold_and_correlations_fall_with_d():
  for d in (2, 5):
    checks = pc.psi_checks(d)
    assert checks["psi_sum_max_err"] <= 1e-12
    assert checks["psi_norm_sq"] >= 1 / 6
    assert checks["num_relus"] == 4 * psi.psi_params(d).m + 2
  vals = []
  for d in (3, 6, 9):
    fn = functools.partial(pc._exact_seed, d=d, feature="linear_sphere", num_features=2,
                           num_w_star=4)
    vals.append(float(sweep.over_seeds(fn, sweep.seed_keys(jax.random.key(0), 1),
                                       jit=False)["exact"][0]))
  assert vals[0] > vals[1] > vals[2] > 0
  rate = pc.decay_rate(np.array([3.0, 6.0, 9.0]), np.array(vals))
  assert rate > 1.0


def test_smoke_summary(smoke_config):
  from rfjax import experiments
  config = smoke_config("psi_correlation")
  rows = experiments.run("psi_correlation", config, jax.random.key(0))
  summary = pc.summarize(config, rows)
  assert summary["psi_sum_max_err"] <= 1e-12 and summary["min_psi_norm_sq"] >= 1 / 6
  assert all(c > 0 for c in summary["decay_rates"].values())
  modes = {r["mode"] for r in rows}
  assert modes == {"exact", "exact_sampled", "monte_carlo"}
