"""rf_concentration: smoke verdict; the streamed sum against a direct one; validation."""
import importlib.util
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import activations
from rfjax import experiments
from rfjax import legendre
from rfjax import validation
from rfjax.experiments import rf_concentration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(variant="smoke"):
  spec = importlib.util.spec_from_file_location(
      "c", os.path.join(ROOT, "configs/rf_concentration.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(variant)


def test_smoke_rows_and_bound():
  config = _config()
  rows = experiments.run("rf_concentration", config, jax.random.key(0))
  summary = rf_concentration.summarize(config, rows)
  assert {"r", "seed", "sup_error", "bound"} <= set(rows[0])
  assert summary["frac_seeds_within_bound"] >= 1 - config.delta
  assert -0.7 < summary["slopes"][0] < -0.3          # few seeds in the smoke run
  assert rows[0]["residual"] < 1e-12                  # poly3: f = P exactly
  assert summary["verdict"] in ("holds", "inconclusive"), summary["verdict_reasons"]
  lo, hi = summary["cells"][0]["slope_interval"]
  assert lo <= summary["slopes"][0] <= hi
  assert summary["would_fail_if"] and "lower estimate" in summary["departures"]


def _rows(err_s, rs=(16, 64, 256, 1024), bound=1.0):
  """Rows of one d whose seed s has sup-error err_s[s]·r^{-1/2}."""
  return [dict(d=4, sigma="poly3", k=2, K=3, r=r, seed=s, sup_error=e / np.sqrt(r),
               bound=bound, sup_g=1.0, g_abs_sum=1.0, lipschitz=3.0, residual=0.0)
          for r in rs for s, e in enumerate(err_s)]


def test_verdict_parts():
  config = _config()
  s = rf_concentration.summarize(config, _rows([1.0, 1.1, 0.9, 1.05]))
  assert s["verdict"] == "holds" and s["slopes"][0] == pytest.approx(-0.5)
  # seeds that all decay at r^{-1/4}: the interval is far from −1/2: fails
  steep = [dict(r, sup_error=r["sup_error"] * r["r"] ** 0.25) for r in _rows([1.0, 1.1, 0.9])]
  s = rf_concentration.summarize(config, steep)
  assert s["verdict"] == "fails" and "outside −0.5 ± 0.1" in s["verdict_reasons"][0]
  config.slope_tol = 0.3                       # the criterion is the config's
  assert rf_concentration.summarize(config, steep)["verdict"] == "holds"
  config.slope_tol = 0.1
  # one seed decays at r^{-1/4}, the other at r^{-1/2}: the seeds cannot tell
  mixed = [dict(r, sup_error=r["sup_error"] * r["r"] ** 0.25) if r["seed"] == 0 else r
           for r in _rows([30.0, 1.0])]
  s = rf_concentration.summarize(config, mixed)
  assert s["verdict"] == "inconclusive" and "cannot tell" in s["verdict_reasons"][0]
  # two r values are no rate
  s = rf_concentration.summarize(config, _rows([1.0, 1.1], rs=(16, 64)))
  assert s["verdict"] == "inconclusive" and "fewer than three" in s["verdict_reasons"][0]
  # every seed out of bound: 4 of 4 at δ = 0.1 has chance 1e-4: fails; 1 of 2: cannot tell
  s = rf_concentration.summarize(config, _rows([1.0, 1.1, 0.9, 1.05], bound=0.01))
  assert s["verdict"] == "fails" and "4 of 4 seeds" in s["verdict_reasons"][0]
  rows = [dict(r, bound=0.01) if r["seed"] == 0 else r for r in _rows([1.0, 1.1])]
  assert rf_concentration.summarize(config, rows)["verdict"] == "inconclusive"


def test_streamed_sum_matches_direct_sum():
  """_one_seed's error at r = 64 equals the error of Σ g(w_i)σ(<w_i,x>)/r built directly."""
  d, k, chunk, r_max = 3, 2, 16, 64
  cons, b = legendre.construct({(1, 0, 0): 0.5, (0, 1, 1): -0.5}, "poly3", d)
  key = jax.random.key(7)
  x = jax.random.uniform(jax.random.key(1), (50, d), jnp.float64, -0.5, 0.5)
  f = legendre.integral("poly3", cons.j_td, jnp.asarray(b), x)
  errs = rf_concentration._one_seed(key, x, f, jnp.asarray(b), sigma="poly3", d=d, k=k,
                                    K=3, r_max=r_max, chunk=chunk)
  keys = jax.random.split(key, r_max // chunk)
  w = jnp.concatenate([jax.random.uniform(kc, (chunk, d), jnp.float64, -1.0, 1.0)
                       for kc in keys]) / math.sqrt(d)
  g = legendre.g(cons.j_td, jnp.asarray(b), w)
  act = activations.get("poly3")
  for r in (16, 64):
    fhat = act.fn(x @ w[:r].T) @ g[:r] / r
    assert float(errs[r // chunk - 1]) == pytest.approx(float(jnp.max(jnp.abs(fhat - f))),
                                                        rel=1e-4, abs=1e-5)


def test_validation_errors():
  config = _config()
  config.sigma = "relu"
  with pytest.raises(validation.ConfigError, match="sigma"):
    rf_concentration.validate(config)
  config = _config()
  config.chunk = 32
  config.log2_r_min = 4
  with pytest.raises(validation.ConfigError, match="chunk"):
    rf_concentration.validate(config)
  config = _config()
  config.delta = 1.5
  with pytest.raises(validation.ConfigError, match="delta"):
    rf_concentration.validate(config)
  for field, value in [("slope_tol", 0.0), ("level", 1.0), ("num_boot", 3)]:
    config = _config()
    config[field] = value
    with pytest.raises(validation.ConfigError, match=field):
      rf_concentration.validate(config)


def test_default_config_meets_issue():
  config = _config("")
  rf_concentration.validate(config)
  assert config.log2_r_min <= 4 and config.log2_r_max >= 16
  assert config.num_seeds >= 16 and config.num_test >= 10**4
