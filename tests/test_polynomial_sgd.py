"""polynomial_sgd: the smoke run end to end, the verdict's logic, the theorems' schedule,
the polynomial, the evaluation against numpy, checkpoints and config validation."""
import functools
import importlib.util
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import experiments
from rfjax import legendre
from rfjax import runner
from rfjax import sweep
from rfjax import training
from rfjax import validation
from rfjax import verdicts
from rfjax.experiments import polynomial_sgd

_spec = importlib.util.spec_from_file_location(
    "cfg_polynomial_sgd", os.path.join(os.path.dirname(__file__), "..", "configs", "polynomial_sgd.py"))
cfg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cfg)


def test_random_polynomial_is_balanced_and_bounded():
  J, c = polynomial_sgd.random_polynomial(0, 3, 2)
  assert J.shape == (10, 3) and np.all(np.abs(c) <= 1)
  x = jax.random.normal(jax.random.key(0), (4, 3))
  expect = c[0] + sum(c[m] * np.prod(np.asarray(x) ** J[m], axis=1) for m in range(1, 10))
  np.testing.assert_allclose(legendre.polynomial_eval(J, c, x), expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("C,eps", [(32.0, 0.05), (4.0, 0.1), (1.0, 0.3)])
def test_theorem32_schedule_meets_the_proofs_conditions(C, eps):
  """At (η, T, r_0) the regret bound is ≤ e, W moves ≤ 1 and the drift costs ≤ e (e = ε/2)."""
  L = math.sqrt(2.0)
  s = polynomial_sgd.theorem32_schedule(C, eps, L)
  e, r, T = eps / 2, s["r0"], s["T"]
  eta = s["eta_times_r"] / r
  regret = (C + 1) ** 2 / (2 * eta * T * r) + 9 * eta * r * L * L / 2
  assert regret <= e * (1 + 1e-12)
  assert T * eta * math.sqrt(r) * 3 * L + 1 <= s["B"] * (1 + 1e-12)   # ‖U_t‖ √r ≤ B
  d_w = T * eta * L * s["B"] / math.sqrt(r)                             # ‖W_t − W_0‖_F
  assert d_w <= 1 + 1e-12
  assert L * C / math.sqrt(r) * d_w <= e * (1 + 1e-12)
  # r_0 is the smallest integer width with both properties (one less breaks one of them).
  r1 = r - 1
  d_w1 = T * eta * r / r1 * L * s["B"] / math.sqrt(r1)   # η·r is fixed, so η = η·r / r1
  assert d_w1 > 1 or L * C / math.sqrt(r1) * d_w1 > e


def test_theory_configs_are_the_theorems_schedule():
  assert polynomial_sgd.theorem32_schedule(32.0, 0.05, math.sqrt(2))["T"] == 31_363_200
  for variant in ("theory", "theory_small"):
    c = cfg.get_config(variant)
    s = polynomial_sgd.theorem32_schedule(c.C, c.epsilon, math.sqrt(2.0))
    assert c.widths == (s["r0"],) and c.steps == s["T"]
    assert math.isclose(c.lr_times_r, s["eta_times_r"], rel_tol=1e-12)
    polynomial_sgd.validate(c)


def test_theorem31_schedule_uses_the_concentration_width():
  s = polynomial_sgd.theorem31_schedule(10.0, 0.3, 1.0, 0.1)
  assert s["e"] == pytest.approx(0.1)
  assert s["r33"] == math.ceil((10 * (4 + math.sqrt(2 * math.log(10))) / 0.1) ** 2)
  assert s["r_min"] == max(s["r33"], s["r0"])


@pytest.mark.parametrize("n,r", [(40, 12), (12, 40)])
def test_isometry_maps_the_ball_onto_the_ball(n, r):
  """A z = Φ u and ‖u‖ = ‖z‖ for u = to_u(z), in both branches (r ≤ n and r > n)."""
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(n, r))
    a, to_u = polynomial_sgd._isometry(jnp.asarray(phi))
    z = rng.normal(size=a.shape[1])
    u = np.asarray(to_u(jnp.asarray(z)))
    np.testing.assert_allclose(np.asarray(a) @ z, phi @ u, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(u), np.linalg.norm(z), rtol=1e-10)


def test_u0_draws_share_w0_and_have_the_stated_norm():
  config = _tiny_config(0)
  J, c = (jnp.asarray(a, jnp.float32) for a in polynomial_sgd.random_polynomial(0, 8, 2))
  keys = sweep.seed_keys(jax.random.key(5), 2)
  start = functools.partial(polynomial_sgd._start_seed, **polynomial_sgd._common(config, 64))
  s0, _ = sweep.over_seeds(start, keys, J, c, jnp.float32(0.0))
  s1, _ = sweep.over_seeds(start, keys, J, c, jnp.float32(1.0))
  for g in training.REGIMES:
    np.testing.assert_array_equal(s0[g].params["params"]["w"], s1[g].params["params"]["w"])
    np.testing.assert_array_equal(s0[g].params0["params"]["w"], s0[g].params["params"]["w"])
    assert np.all(np.asarray(s0[g].params["params"]["u"]) == 0.0)
    np.testing.assert_allclose(np.linalg.norm(s1[g].params["params"]["u"], axis=1),
                               1 / 8, rtol=1e-6)
  # W_0 is networks.init's Xavier cube draw: rows in [−1/√d, 1/√d]^d.
  w = np.asarray(s0["full"].params["params"]["w"])
  assert w.shape == (2, 64, 8) and np.all(np.abs(w) <= 1 / np.sqrt(8))


def test_final_margins_match_numpy():
  """The final-iterate margins y·N(x) against a numpy evaluation of U σ(W x) on the same x."""
  config = _tiny_config(0)
  J, c = (jnp.asarray(a, jnp.float32) for a in polynomial_sgd.random_polynomial(0, 8, 2))
  keys = sweep.seed_keys(jax.random.key(7), 2)
  logs, states = polynomial_sgd._train(config, 16, 1.0, keys, J, c, None)
  m = sweep.over_seeds(functools.partial(polynomial_sgd._final_seed, d=8, r=16,
                                        activation="sincos", n_test=64),
                       keys, J, c, per_seed=(states,))
  assert m.shape == (2, len(polynomial_sgd.FINAL_MODELS), 64)
  for s in range(2):
    ks = polynomial_sgd._keys(keys[s])
    x, y = polynomial_sgd._labelled(ks.test, 64, J, c, 8)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    full = states["full"]
    w = np.asarray(full.params["params"]["w"][s], np.float64)
    u = np.asarray(full.params["params"]["u"][s], np.float64)
    w0 = np.asarray(full.params0["params"]["w"][s], np.float64)
    sc = lambda z: np.sin(z) + np.cos(z)
    np.testing.assert_allclose(m[s, 0], y * (sc(x @ w.T) @ u), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m[s, 3], y * (sc(x @ w0.T) @ u), rtol=1e-4, atol=1e-5)
    rf = states["random_features"]
    np.testing.assert_array_equal(rf.params["params"]["w"][s], full.params0["params"]["w"][s])


@pytest.mark.parametrize("est,se,want", [(0.01, 0.01, "holds"), (0.045, 0.01, "inconclusive"),
                                         (0.08, 0.01, "fails"), (0.07, 0.01, "inconclusive")])
def test_three_way_decision(est, se, want):
  assert polynomial_sgd._three_way(est, se, 0.05, 2.0) == want


@functools.cache
def _smoke_rows():
  return experiments.run("polynomial_sgd", cfg.get_config("smoke"), jax.random.key(0))


def _smoke():
  """The smoke config and a copy of its rows (one run per test session)."""
  return cfg.get_config("smoke"), [dict(x) for x in _smoke_rows()]


def test_smoke_run():
  config, rows = _smoke()
  regimes = {r["regime"] for r in rows}
  assert regimes == {"full", "random_features", "linearized", "best_readout", "polynomial"}
  rf = [r for r in rows if r["regime"] == "random_features"]
  assert all(r["w_move"] == 0 and r["sign_flips"] == 0 for r in rf)
  finals = [r for r in rows if r.get("iterate") == "final"]
  assert len(finals) == len(config.widths) * len(config.u0_norms) * 3 * config.num_seeds
  assert all(r["steps"] == config.steps for r in finals)
  # Every row has a key of its own without falling back to positions.
  for r in config.widths:
    cell = [x for x in rows if x["r"] == r]
    keys = runner.row_keys(f"polynomial_sgd/r={r}", dict(r=r), cell,
                           polynomial_sgd.ROW_ID_FIELDS)
    assert len(set(keys)) == len(keys) and not any("/row=" in k for k in keys)
  # The comparators' certificates bracket their fit-sample hinge.
  for x in rows:
    if x["regime"] == "best_readout":
      assert x["fit_lower"] <= x["fit_hinge"] + 1e-12 and x["norm_ratio"] <= 1 + 1e-9
  s = polynomial_sgd.summarize(config, rows)
  runner.check_verdict("polynomial_sgd", s)
  assert {"claim", "prediction", "measured", "T_theory", "theorem31", "cells"} <= set(s)
  assert len(s["cells"]) == len(config.widths) * len(config.u0_norms)
  assert str(s["T_theory"]) in s["departures"] and "final iterate" in s["departures"]
  for c in s["cells"]:
    assert 0 <= c["L_star"] <= 1.5 and 0 <= c["L_P"] <= 1.5 and c["L_star_se"] > 0
    assert c["thm32"] in verdicts.VERDICTS and c["thm31"] in verdicts.VERDICTS
  # A full net much worse than both comparators fails, naming the width.
  worse = [dict(x, test_hinge=x["test_hinge"] + 2.0, minus_star=x["minus_star"] + 2.0,
                minus_P=x["minus_P"] + 2.0, minus_rf=x["minus_rf"] + 2.0)
           if x.get("iterate") == "final" and x["regime"] == "full" else x for x in rows]
  w = polynomial_sgd.summarize(config, worse)
  assert w["verdict"] == "fails" and w["verdict_reasons"][0].startswith("r=16")
  # A full net exactly at its comparators, with tiny errors, whose W does not matter: holds,
  # and the random-features comparison is left out as 'coincide'.
  good = [dict(x, minus_star=0.0, minus_P=0.0, minus_rf=0.5, w_effect=0.0,
               minus_star_se=1e-4, minus_P_se=1e-4, test_hinge_se=1e-3)
          if x.get("iterate") == "final" and x["regime"] == "full" else
          dict(x, fit_gap=0.0, test_hinge_se=1e-3) if "test_hinge_se" in x else x
          for x in rows]
  g = polynomial_sgd.summarize(config, good)
  assert g["verdict"] == "holds", g["verdict_reasons"]
  assert all(c["full_vs_rf"] == "coincide" for c in g["cells"])
  assert "no evidence" in g["departures"]
  # The same, but W matters and full is worse than RF by 0.5: fails.
  bad_rf = [dict(x, w_effect=0.3) if x.get("iterate") == "final" and x["regime"] == "full"
            else x for x in good]
  assert polynomial_sgd.summarize(config, bad_rf)["verdict"] == "fails"
  # A comparator whose certificate is loose cannot give 'holds'.
  loose = [dict(x, fit_gap=1.0) if x["regime"] == "best_readout" else x for x in good]
  assert polynomial_sgd.summarize(config, loose)["verdict"] == "inconclusive"
  # Too few test points (s.e. > ε/5): inconclusive, never holds.
  noisy = [dict(x, test_hinge_se=0.05) if "test_hinge_se" in x else x for x in good]
  assert polynomial_sgd.summarize(config, noisy)["verdict"] == "inconclusive"


def test_figure_draws_from_the_smoke_run(tmp_path):
  from rfjax import plots
  config, rows = _smoke()
  s = polynomial_sgd.summarize(config, rows)
  path = str(tmp_path / "p.png")
  plots.save("polynomial_sgd", config, rows, dict(s, experiment="polynomial_sgd"), path)
  assert os.path.getsize(path) > 10_000


@pytest.mark.parametrize("field,value", [("activation", "relu"), ("widths", (0,)),
                                         ("log_every", 7), ("n_probe", 10**6),
                                         ("u0_norms", (0.0, 2.0)), ("u0_norms", ()),
                                         ("C", 0.5), ("delta", 1.0), ("z", 0.0)])
def test_validation(field, value):
  config = cfg.get_config("smoke")
  config[field] = value
  with pytest.raises(validation.ConfigError, match=field):
    polynomial_sgd.validate(config)


def _tiny_config(checkpoint_every):
  config = cfg.get_config("smoke")
  config.widths, config.num_seeds, config.steps, config.log_every = (16,), 2, 200, 50
  config.n_test, config.n_monitor, config.n_probe, config.n_fit = 64, 32, 16, 64
  config.fit_iters = 10
  config.checkpoint_every = checkpoint_every
  return config


def test_training_in_segments_matches_one_run():
  key = jax.random.key(3)
  whole = polynomial_sgd.run_cell(_tiny_config(0), dict(r=16), key)
  parts = polynomial_sgd.run_cell(_tiny_config(50), dict(r=16), key)
  assert [sorted(r) for r in parts] == [sorted(r) for r in whole]
  for p, w in zip(parts, whole):
    for k, v in w.items():
      if isinstance(v, float):               # separate programs: float32 rounding only
        np.testing.assert_allclose(p[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
      else:
        assert p[k] == v


def test_a_cell_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
  config, key, ckpt = _tiny_config(50), jax.random.key(4), str(tmp_path / "ckpt")
  segments = []
  over_seeds = sweep.over_seeds

  def counting(fn, keys, *args, **kw):
    if getattr(fn, "func", None) is polynomial_sgd._segment_seed:
      segments.append(int(args[-1]))         # the segment's first log index
    return over_seeds(fn, keys, *args, **kw)

  monkeypatch.setattr(sweep, "over_seeds", counting)
  first = polynomial_sgd.run_cell(config, dict(r=16), key, checkpoint_dir=ckpt)
  assert segments == [0, 1, 2, 3] * 2        # each U_0
  # A killed run leaves its last saves (steps 150 of 200; the last segment is not saved).
  assert sorted(os.listdir(ckpt)) == ["u0_0", "u0_1"]
  assert all(os.listdir(os.path.join(ckpt, u)) == ["150"] for u in ("u0_0", "u0_1"))
  resumed = polynomial_sgd.run_cell(config, dict(r=16), key, checkpoint_dir=ckpt)
  assert segments[8:] == [3, 3]              # only the last segment was trained again
  assert resumed == first
  assert polynomial_sgd.run_cell(config, dict(r=16), key) == first   # no checkpoints


def test_checkpoint_every_must_fit_the_log_grid():
  for bad in (30, 75, -50):
    config = _tiny_config(bad)
    with pytest.raises(validation.ConfigError, match="checkpoint_every"):
      polynomial_sgd.validate(config)
  polynomial_sgd.validate(_tiny_config(0))
  polynomial_sgd.validate(_tiny_config(100))
