"""linear_rf (Prop. 4.1): the best-fit error against least squares and the Beta law."""
import jax
import numpy as np
from scipy import stats

from rfjax import experiments
from rfjax.experiments import linear_rf


def test_best_error_matches_least_squares_on_samples():
  rng = np.random.default_rng(0)
  d, r, n = 12, 5, 200_000
  w_dr = rng.standard_normal((d, r))
  w_star = rng.standard_normal(d)
  w_star /= np.linalg.norm(w_star)
  x = rng.standard_normal((n, d))
  u, *_ = np.linalg.lstsq(x @ w_dr, x @ w_star, rcond=None)
  mc = np.mean((x @ w_dr @ u - x @ w_star) ** 2)
  exact = float(linear_rf.best_linear_error(w_dr, w_star))
  np.testing.assert_allclose(exact, mc, rtol=2e-2)
  # And the population form |Σu_i w_i − w*|² at the population optimum.
  u_pop, *_ = np.linalg.lstsq(w_dr, w_star, rcond=None)
  np.testing.assert_allclose(exact, np.sum((w_dr @ u_pop - w_star) ** 2), rtol=1e-10)


def test_smoke_rows_follow_the_beta_law(smoke_config):
  config = smoke_config("linear_rf")
  rows = experiments.run("linear_rf", config, jax.random.key(config.seed))
  summary = linear_rf.summarize(config, rows)
  assert summary["holds"], summary["measured"]
  for cell in summary["cells"]:
    d, r = cell["d"], cell["r"]
    errs = [row["error"] for row in rows if (row["d"], row["r"], row["num_seeds"]) ==
            (d, r, cell["num_seeds"])]
    assert len(errs) == cell["num_seeds"]
    assert stats.kstest(errs, stats.beta((d - r) / 2, r / 2).cdf).pvalue > 1e-3
