"""integral_rep: smoke run, verdict, the per-cell numbers against direct computation."""
import importlib.util
import os

import jax
import numpy as np
import pytest

from rfjax import experiments
from rfjax import legendre
from rfjax import validation
from rfjax.experiments import integral_rep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(variant="smoke"):
  spec = importlib.util.spec_from_file_location("c", os.path.join(ROOT, "configs/integral_rep.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(variant)


def test_smoke_holds():
  config = _config()
  rows = experiments.run("integral_rep", config, jax.random.key(0))
  summary = integral_rep.summarize(config, rows)
  assert summary["holds"], summary["measured"]
  assert summary["poly_residual_max"] <= 1e-10
  assert {"d", "k", "sigma", "sup_g", "bound_g", "residual", "K", "seed"} <= set(rows[0])
  for r in rows:
    assert r["sup_g"] <= r["g_abs_sum"] * (1 + 1e-9) <= r["bound_g"]


def test_random_alpha_is_bounded_and_sparse():
  rng = np.random.default_rng(0)
  alpha = integral_rep.random_alpha(rng, 5, 20, 4)
  np.testing.assert_allclose(np.abs(alpha).sum(1), 1.0)
  assert np.all((alpha != 0).sum(1) == 4)


def test_cell_residual_matches_direct_construction():
  """The cell's residual for one seed equals construct() + integral() on a dict polynomial."""
  rng = np.random.default_rng(3)
  out = integral_rep._cell_numbers(rng, sigma="exp", d=3, k=2, K=4, num_seeds=2, num_terms=3,
                                   num_sup=256, num_test=256, chunk=128)
  assert np.all(out["residual"] > 1e-8) and np.all(out["residual"] < 0.1)
  assert np.all(out["p_sup"] <= 1 + 1e-12)


def test_validation_errors():
  config = _config()
  config.sigmas = ("relu",)
  with pytest.raises(validation.ConfigError, match="not analytic"):
    integral_rep.validate(config)
  config = _config()
  config.sigmas = ("tanh",)
  with pytest.raises(validation.ConfigError, match="no exact integral"):
    integral_rep.validate(config)
  config = _config()
  config.truncation_degrees = (1,)
  with pytest.raises(validation.ConfigError, match="truncation_degrees"):
    integral_rep.validate(config)
  config = _config()
  config.num_test = 100
  with pytest.raises(validation.ConfigError, match="num_test"):
    integral_rep.validate(config)


def test_default_config_grid():
  config = _config("")
  integral_rep.validate(config)
  assert set(config.ds) == set(range(2, 9)) and set(config.ks) == {1, 2, 3}
  with pytest.raises(ValueError):
    _config("nope")
