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
from rfjax import plots
from rfjax import validation
from rfjax.experiments import rf_concentration

NAME = "rf_concentration"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(variant="smoke"):
  spec = importlib.util.spec_from_file_location(
      "c", os.path.join(ROOT, "configs/rf_concentration.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(variant)


def test_smoke_rows_and_bound(tmp_path):
  config = _config()
  rows = experiments.run("rf_concentration", config, jax.random.key(0))
  summary = rf_concentration.summarize(config, rows)
  assert {"r", "seed", "poly", "sup_error", "bound", "bound_upper"} <= set(rows[0])
  assert len(summary["cells"]) == len(config.ds) * config.num_polys >= 4
  assert len({(r["d"], r["poly"]) for r in rows}) == len(summary["cells"])
  for r in rows:
    assert r["bound"] <= r["bound_upper"]                  # searched sup|g| ≤ Σ|b_J|
    assert r["residual"] < 1e-12                           # poly3: f = P exactly
    assert r["lipschitz"] == pytest.approx(2.5, rel=1e-6)  # max|σ'| on [-1, 1] = 1 + 1 + 1/2
  # different P per cell: different C
  assert len({round(c["sup_g"], 9) for c in summary["cells"]}) == len(summary["cells"])
  assert summary["frac_seeds_within_bound"] >= 1 - config.delta
  assert 0 < summary["fraction_max"] < 1
  # few seeds and r ≤ 512 in the smoke run: the slopes scatter, the bound is far
  assert all(-0.9 < sl < -0.2 for sl in summary["slopes"])
  assert summary["bound_tests"]["holds"] == len(summary["cells"]) * 6
  assert summary["verdict"] in ("holds", "inconclusive", "fails")
  for c in summary["cells"]:
    lo, hi = c["slope_interval"]
    assert lo <= c["slope"] <= hi
  assert summary["would_fail_if"] and "lower estimate" in summary["departures"]
  path = tmp_path / "rf.png"
  plots.save("rf_concentration", config, rows, dict(summary, experiment=NAME), str(path))
  assert path.stat().st_size > 10_000


def _rows(err_s, rs=(16, 64, 256, 1024), bound=1.0, bound_upper=None, d=4, poly=0):
  """Rows of one (d, P) whose seed s has sup-error err_s[s]·r^{-1/2}."""
  return [dict(d=d, poly=poly, sigma="poly3", k=2, K=3, r=r, seed=s, sup_error=e / np.sqrt(r),
               bound=bound, bound_upper=bound if bound_upper is None else bound_upper, sup_g=1.0, g_abs_sum=1.0, lipschitz=3.0,
               residual=0.0)
          for r in rs for s, e in enumerate(err_s)]


def test_verdict_parts():
  config = _config()
  s = rf_concentration.summarize(config, _rows([1.0, 1.1, 0.9, 1.05]))
  assert s["verdict"] == "holds" and s["slopes"][0] == pytest.approx(-0.5)
  assert s["fraction_max"] == pytest.approx(1.1 / 4)
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


def test_bound_part_at_delta():
  config = _config()
  seeds = [1.0] * 12
  # every draw above the bound, also with the upper C: 12 of 12 at δ = 0.1 fails
  s = rf_concentration.summarize(config, _rows(seeds, bound=0.01))
  assert s["verdict"] == "fails" and s["bound_tests"]["fails"] == 4
  assert any("12 of 12 seeds above the bound" in x for x in s["verdict_reasons"])
  # above the bound with the searched C but not with Σ|b_J|: not certified: inconclusive
  s = rf_concentration.summarize(config, _rows(seeds, bound=0.01, bound_upper=10.0))
  assert s["verdict"] == "inconclusive" and s["bound_tests"]["inconclusive"] == 4
  # one draw of 12 above (≤ δ·12 = 1.2): holds
  one = [dict(r, bound_upper=0.01, bound=0.01) if r["seed"] == 0 else r for r in _rows(seeds)]
  assert rf_concentration.summarize(config, one)["bound_tests"]["holds"] == 4
  # 3 of 12 certainly above: binomial chance 0.11 is not below (1 − 0.9)/4: inconclusive
  three = [dict(r, bound_upper=0.01, bound=0.01) if r["seed"] < 3 else r for r in _rows(seeds)]
  s = rf_concentration.summarize(config, three)
  assert s["bound_tests"]["inconclusive"] == 4 and s["bound_tests"]["alpha"] == pytest.approx(0.025)
  out, chance = rf_concentration.bound_outcome(3, 3, 12, delta=0.1, alpha=0.025)
  assert out == "inconclusive"
  assert chance == pytest.approx(1 - sum(math.comb(12, j) * 0.1**j * 0.9**(12 - j)
                                         for j in range(3)))
  # the Bonferroni level counts every (d, P, r): more cells, smaller alpha
  more = _rows(seeds) + _rows(seeds, d=8, poly=1)
  assert rf_concentration.summarize(config, more)["bound_tests"]["alpha"] == pytest.approx(0.0125)


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
  for field, value in [("slope_tol", 0.0), ("level", 1.0), ("num_boot", 3), ("num_polys", 0)]:
    config = _config()
    config[field] = value
    with pytest.raises(validation.ConfigError, match=field):
      rf_concentration.validate(config)


def test_default_config_meets_issue():
  config = _config("")
  rf_concentration.validate(config)
  assert len(config.ds) >= 3 and config.num_polys >= 3
  assert config.log2_r_max - config.log2_r_min >= 8
  assert config.num_seeds >= 16 and config.num_test >= 4096
  assert config.delta == 0.1 and config.level == 0.9 and config.slope_tol == 0.1
