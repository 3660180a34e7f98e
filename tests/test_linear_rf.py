"""linear_rf (Prop. 4.1): the best-fit error against least squares and the Beta law."""
import jax
import numpy as np
import pytest
from scipy import stats

from rfjax import experiments
from rfjax import validation
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
  assert summary["verdict"] == "holds" and summary["verdict_reasons"] == []
  assert "3 standard errors" in summary["would_fail_if"] and "finite grid" in summary["departures"]
  for cell in summary["cells"]:
    d, r = cell["d"], cell["r"]
    errs = [row["error"] for row in rows if (row["d"], row["r"], row["num_seeds"]) ==
            (d, r, cell["num_seeds"])]
    assert len(errs) == cell["num_seeds"]
    assert stats.kstest(errs, stats.beta((d - r) / 2, r / 2).cdf).pvalue > 1e-3


def _rows(errors_by_cell):
  return [dict(d=d, r=r, num_seeds=len(errs), seed=s, feature="linear_sphere", error=e)
          for (d, r), errs in errors_by_cell.items() for s, e in enumerate(errs)]


def test_verdict_fails_inconclusive_and_reads_its_criteria_from_the_config(smoke_config):
  config = smoke_config("linear_rf")
  rng = np.random.default_rng(0)
  beta = lambda d, r, n: list(rng.beta((d - r) / 2, r / 2, n))
  good = {(8, 2): beta(8, 2, 64), (8, 4): beta(8, 4, 64)}
  assert linear_rf.summarize(config, _rows(good))["verdict"] == "holds"
  # a mean far from 1 − r/d: fails, with the cell named
  far = {**good, (8, 2): [min(e + 0.1, 1.0) for e in good[8, 2]]}
  s = linear_rf.summarize(config, _rows(far))
  assert s["verdict"] == "fails" and not s["holds"]
  assert any(r.startswith("d=8, r=2: mean") for r in s["verdict_reasons"])
  config.max_mean_z = 1e6                    # the criterion is the config's
  assert linear_rf.summarize(config, _rows(far))["verdict"] == "holds"
  # no cell at r = d/2: the tail was not measured
  s = linear_rf.summarize(config, _rows({(8, 2): good[8, 2]}))
  assert s["verdict"] == "inconclusive"
  assert s["verdict_reasons"] == ["no cell at r = d/2: the tail probability was not measured"]
  # errors that do not vary have no standard error: inconclusive, never holds
  s = linear_rf.summarize(config, _rows({**good, (8, 2): [0.75] * 64}))
  assert s["verdict"] == "inconclusive"


@pytest.mark.parametrize("field,value", [("max_mean_z", 0.0), ("max_tail_z", -1.0),
                                         ("max_tail_z", float("nan"))])
def test_validation_of_verdict_criteria(smoke_config, field, value):
  config = smoke_config("linear_rf")
  config[field] = value
  with pytest.raises(validation.ConfigError, match=field):
    linear_rf.validate(config)
