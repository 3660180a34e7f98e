"""rf_concentration: smoke verdict; the streamed sum against a direct one; validation."""
import importlib.util
import math
import os

import jax
import jax.numpy as jnp
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


def test_default_config_meets_issue():
  config = _config("")
  rf_concentration.validate(config)
  assert config.log2_r_min <= 4 and config.log2_r_max >= 16
  assert config.num_seeds >= 16 and config.num_test >= 10**4
