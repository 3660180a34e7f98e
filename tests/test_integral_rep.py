"""integral_rep: smoke run, verdict, the per-cell numbers against direct computation."""
import importlib.util
import os

import jax
import jax.numpy as jnp
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
  assert summary["verdict"] == "holds" and summary["would_fail_if"] and summary["departures"]
  assert summary["poly_residual_max"] <= 1e-10
  # A residual above poly_tol fails; without analytic σ the decay in K is not measured.
  bad = [dict(r, residual=1e-6) if r["sigma"] == "poly3" and r["seed"] == 0 else r
         for r in rows]
  s = integral_rep.summarize(config, bad)
  assert s["verdict"] == "fails" and "poly_tol = 1e-10" in s["verdict_reasons"][0]
  s = integral_rep.summarize(config, [r for r in rows if r["sigma"] == "poly3"])
  assert s["verdict"] == "inconclusive" and "no analytic σ" in s["verdict_reasons"][0]
  # sup_g above Σ|b_J| beyond the config's rounding allowance fails
  over = [dict(r, sup_g=r["g_abs_sum"] * (1 + 1e-6)) if r is rows[0] else r for r in rows]
  assert integral_rep.summarize(config, over)["verdict"] == "fails"
  config.sup_rtol = 1e-5
  assert integral_rep.summarize(config, over)["verdict"] == "holds"
  assert {"d", "k", "sigma", "sup_g", "bound_g", "residual", "K", "seed"} <= set(rows[0])
  for r in rows:
    assert r["sup_g"] <= r["g_abs_sum"] * (1 + 1e-9) <= r["bound_g"]


def test_random_alpha_is_bounded_sparse_and_masked():
  mask = np.arange(20) < 12
  alphas = jax.vmap(lambda k: integral_rep.random_alpha(k, mask, 4))(
      jax.random.split(jax.random.key(0), 50))
  alphas = np.asarray(alphas)
  np.testing.assert_allclose(np.abs(alphas).sum(1), 1.0)
  assert np.all((alphas != 0).sum(1) == 4)
  assert np.all(alphas[:, ~mask] == 0)
  assert len({tuple(np.flatnonzero(a)) for a in alphas}) > 20       # supports vary by seed
  few = integral_rep.random_alpha(jax.random.key(1), np.arange(6) < 2, 4)
  assert np.count_nonzero(few) == 2 and np.all(np.asarray(few)[2:] == 0)


@pytest.mark.parametrize("sigma,k,K", [("exp", 2, 4), ("poly3", 1, 3)])
def test_padded_cell_matches_its_own_construction(sigma, k, K):
  """A cell written over the group's larger monomial and product sets (k_max = 3, K_max = 6
  for exp) gives the b_J, sup and residual of prepare(σ, d, k, K) on the same α."""
  d = 3
  k_max, K_max = (3, 6) if sigma == "exp" else (3, 3)
  group = integral_rep._group(sigma, d, k_max, K_max)
  inputs = integral_rep._cell_inputs(sigma, d, k, K, group)
  cons = legendre.prepare(sigma, d, k, K)
  # the cell's candidates are the group's masked ones, in the same order
  np.testing.assert_array_equal(group.i_sd[inputs["mask_s"]], cons.i_sd)
  k_alpha, k_sup = jax.random.split(jax.random.key(2))      # as the seed program splits
  alpha = np.asarray(integral_rep.random_alpha(k_alpha, inputs["mask_s"], 3))
  b_group = inputs["map_ts"] @ alpha
  b_cell = cons.map_ts @ alpha[inputs["mask_s"]]
  row = {tuple(j): t for t, j in enumerate(group.j_td.tolist())}
  idx = [row[tuple(j)] for j in cons.j_td.tolist()]
  np.testing.assert_allclose(b_group[idx], b_cell, rtol=1e-13, atol=1e-13)
  assert np.all(np.delete(b_group, idx) == 0)
  # the seed program's numbers against the cell's own construction
  x = jax.random.normal(jax.random.key(3), (64, d), jnp.float64) / 2.0
  out = integral_rep._one_seed(
      jax.random.key(2), x, jax.tree.map(jnp.asarray, inputs), sigma=sigma, d=d,
      k_max=k_max, K_max=K_max, num_terms=3, num_sup=512, chunk=32)
  np.testing.assert_allclose(out["g_abs_sum"], np.abs(b_cell).sum(), rtol=1e-13)
  fx = legendre.integral(sigma, cons.j_td, jnp.asarray(b_cell), x)
  px = legendre.polynomial_eval(cons.i_sd, jnp.asarray(alpha[inputs["mask_s"]]), x)
  np.testing.assert_allclose(out["residual"], np.abs(np.asarray(fx - px)).max(),
                             rtol=1e-9, atol=1e-13)
  sup = legendre.sup_g_estimate(k_sup, cons.j_td, jnp.asarray(b_cell), num=512, chunk=32)
  np.testing.assert_allclose(out["sup_g"], sup, rtol=1e-12)


def test_cell_numbers_bounded():
  out = integral_rep._cell_numbers(jax.random.key(3), sigma="exp", d=3, k=2, K=4, k_max=2,
                                   K_max=4, num_seeds=2, num_terms=3, num_sup=256,
                                   num_test=256, chunk=128)
  assert np.all(out["residual"] > 1e-8) and np.all(out["residual"] < 0.1)
  assert np.all(out["p_sup"] <= 1 + 1e-12)
  assert np.all(out["sup_g"] <= out["g_abs_sum"] * (1 + 1e-12))
  assert np.all(out["g_abs_sum"] <= out["bound_g"])


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
  config = _config()
  config.sup_rtol = -1e-9
  with pytest.raises(validation.ConfigError, match="sup_rtol"):
    integral_rep.validate(config)


def test_default_config_grid():
  config = _config("")
  integral_rep.validate(config)
  assert set(config.ds) == set(range(2, 9)) and set(config.ks) == {1, 2, 3}
  with pytest.raises(ValueError):
    _config("nope")
