"""lazy_training: the smoke run end to end and config validation."""
import jax
import numpy as np
import pytest

from rfjax import experiments
from rfjax import validation
from rfjax.experiments import lazy_training
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "cfg_lazy_training", os.path.join(os.path.dirname(__file__), "..", "configs", "lazy_training.py"))
cfg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cfg)


def test_smoke_run():
  config = cfg.get_config("smoke")
  rows = experiments.run("lazy_training", config, jax.random.key(0))
  assert {r["part"] for r in rows} == {"lazy", "neuron"}
  full = [r for r in rows if r["part"] == "lazy" and r["regime"] == "full"]
  assert all(r["w_move"] > 0 and np.isfinite(r["out_gap"]) for r in full)
  rf = [r for r in rows if r["regime"] == "random_features"]
  assert all(r["w_move"] == 0 for r in rf)
  s = lazy_training.summarize(config, rows)
  assert {"claim", "prediction", "measured", "holds"} <= set(s)
  assert np.isfinite(s["lazy"]["relu"]["w_move_exponent"])
  # Two widths give no rate: the lazy part is inconclusive, never holds.
  assert s["verdict"] in ("inconclusive", "fails") and not s["holds"]
  assert "relu: w_move exponent from 2 width(s) with w_move > 0; a rate needs three" in \
      s["verdict_reasons"]
  assert s["would_fail_if"] and "not the theorem's η" in s["departures"]
  # the neuron part: mean-field steps by default, recorded per row and in the summary
  r = config.neuron_widths[0]
  neuron = [x for x in rows if x["part"] == "neuron"]
  assert all(x["lr_u"] == config.neuron_lr_times_r / r for x in neuron)
  assert all(x["lr_w"] == (0.0 if x["regime"] == "random_features"
                           else config.neuron_lr_times_r * r) for x in neuron)
  assert s["neuron"][0]["step_sizes"]["full"]["lr_w"] == config.neuron_lr_times_r * r
  assert "mean-field" in s["neuron_setup"]["step_sizes"]


@pytest.mark.parametrize("field,value", [("widths", (64,)), ("activations", ("sincos",)),
                                         ("neuron_log_every", 7), ("neuron_kink", 5.0),
                                         ("w_move_exponent_max", 20.0),
                                         ("out_gap_exponent_max", float("nan"))])
def test_validation(field, value):
  config = cfg.get_config("smoke")
  config[field] = value
  with pytest.raises(validation.ConfigError):
    lazy_training.validate(config)


def test_validation_rejects_unknown_w_lr_scaling():
  config = cfg.get_config("smoke")
  config.neuron_w_lr_scaling = "ntk"
  with pytest.raises(validation.ConfigError):
    lazy_training.validate(config)


def test_neuron_step_sizes_by_hand():
  # mean field: η_U = c/r, η_W = c·r; lazy: both c/r.
  assert lazy_training.neuron_step_sizes("mean_field", 0.5, 64) == dict(lr_w=32.0,
                                                                       lr_u=0.5 / 64)
  assert lazy_training.neuron_step_sizes("lazy", 0.5, 64) == dict(lr_w=0.5 / 64,
                                                                 lr_u=0.5 / 64)
  with pytest.raises(ValueError):
    lazy_training.neuron_step_sizes("ntk", 0.5, 64)


def _squared_step(scaling, w, u, x, y, c=0.5, regime="full"):
  import jax.numpy as jnp
  from rfjax import networks, training
  r, d = w.shape
  net = networks.make(r, "relu", dtype=jnp.float64)
  p = {"params": {"w": jnp.asarray(w), "u": jnp.asarray(u)}}
  lrs = lazy_training.neuron_step_sizes(scaling, c, r)
  tr = training.make_trainer(net, regime, lr=lrs["lr_u"], lr_w=lrs["lr_w"], loss="squared")
  state = tr.step(tr.init(p), (jnp.asarray(x), jnp.asarray(y)))
  return np.asarray(state.params["params"]["w"]), np.asarray(state.params["params"]["u"])


@pytest.mark.parametrize("scaling", ["mean_field", "lazy"])
def test_neuron_step_matches_hand_computation(scaling):
  """One squared-loss step on a 3-neuron ReLU net against numpy, with (η_W, η_U) by hand."""
  rng = np.random.default_rng(0)
  r, d, c = 3, 3, 0.5
  w, u = rng.normal(size=(r, d)), rng.normal(size=r) / r
  x, y = rng.normal(size=(2, d)), rng.normal(size=2)
  eta_w, eta_u = (c * r, c / r) if scaling == "mean_field" else (c / r, c / r)
  z = x @ w.T                                       # [n, r]
  res = np.maximum(z, 0) @ u - y                    # N − y, [n]
  g_u = (res[:, None] * np.maximum(z, 0)).mean(0)
  g_w = ((res[:, None] * u[None, :] * (z > 0))[:, :, None] * x[:, None, :]).mean(0)
  w_new, u_new = _squared_step(scaling, w, u, x, y, c)
  np.testing.assert_allclose(w_new, w - eta_w * g_w, rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(u_new, u - eta_u * g_u, rtol=1e-12, atol=1e-14)
  # random features: W bit-identical, U the same step.
  w_rf, u_rf = _squared_step(scaling, w, u, x, y, c, regime="random_features")
  np.testing.assert_array_equal(w_rf, w)
  np.testing.assert_allclose(u_rf, u - eta_u * g_u, rtol=1e-12, atol=1e-14)


def test_mean_field_step_is_width_independent():
  """Duplicating every neuron k times (U/k) gives the same function; the mean-field step
  keeps the copies exact duplicates of the narrow net's step (each w_i moves the same at
  width r and k·r), while the lazy step moves W k² times less at width k·r."""
  rng = np.random.default_rng(1)
  r, d, k = 3, 4, 4
  w, u = rng.normal(size=(r, d)), rng.normal(size=r) / r
  x, y = rng.normal(size=(5, d)), rng.normal(size=5)
  wk, uk = np.repeat(w, k, axis=0), np.repeat(u, k) / k
  w1, u1 = _squared_step("mean_field", w, u, x, y)
  wk1, uk1 = _squared_step("mean_field", wk, uk, x, y)
  np.testing.assert_allclose(wk1, np.repeat(w1, k, axis=0), rtol=1e-12, atol=1e-13)
  np.testing.assert_allclose(uk1, np.repeat(u1, k) / k, rtol=1e-12, atol=1e-13)
  w1, _ = _squared_step("lazy", w, u, x, y)
  wk1, _ = _squared_step("lazy", wk, uk, x, y)
  np.testing.assert_allclose(wk1 - wk, np.repeat(w1 - w, k, axis=0) / k ** 2, rtol=1e-10)


def test_linearized_relu_net_is_linear_in_coupling_features():
  """N_lin(W, U) for the ReLU equals the coupling features times vec(u_i w_ij)."""
  import jax.numpy as jnp
  from rfjax import networks
  rng = np.random.default_rng(2)
  r, d = 5, 3
  w0 = rng.uniform(-1, 1, size=(r, d + 1))
  p0 = {"params": {"w": jnp.asarray(w0), "u": jnp.zeros(r)}}
  w, u = w0 + rng.normal(size=(r, d + 1)), rng.normal(size=r)
  p = {"params": {"w": jnp.asarray(w), "u": jnp.asarray(u)}}
  x = rng.normal(size=(7, d))
  x1 = np.concatenate([x, np.ones((7, 1))], axis=1)
  n_lin = networks.linearized_apply(p, p0, jnp.asarray(x1), "relu")
  phi = lazy_training.coupling_features(jnp.asarray(w0), jnp.asarray(x))
  assert phi.shape == (7, r * (d + 1))
  np.testing.assert_allclose(phi @ (u[:, None] * w).ravel(), n_lin, rtol=1e-12, atol=1e-12)


def test_best_fit_errors_against_numpy_least_squares():
  """Exact random-features best fit vs numpy lstsq on many samples; the linearised twin's
  in-sample fit vs numpy lstsq on the very same inputs."""
  import jax.numpy as jnp
  from rfjax import distributions
  d, r, c = 3, 6, 1.0
  key = jax.random.key(3)
  w0 = jax.random.uniform(jax.random.key(4), (r, d + 1), jnp.float64, -0.6, 0.6)
  w_d = jnp.asarray([2.0, -1.0, 2.0])
  n = 4 * r * (d + 1)
  best = lazy_training.best_fit_errors(key, w0, w_d, jnp.asarray(c), lin_fit_n=n)
  x = np.asarray(distributions.gaussian(jax.random.key(5), 400_000, d, dtype=jnp.float64))
  x1 = np.concatenate([x, np.ones((len(x), 1))], axis=1)
  y = np.maximum(x @ np.asarray(w_d) - c, 0)
  phi = np.concatenate([np.maximum(x1 @ np.asarray(w0).T, 0), np.ones((len(x), 1))], axis=1)
  coef = np.linalg.lstsq(phi, y, rcond=None)[0]
  mc = np.mean((phi @ coef - y) ** 2) / np.mean(y ** 2)
  np.testing.assert_allclose(float(best["random_features"]), mc, rtol=0.03)
  # the in-sample coupling fit: n ≤ one chunk, so sample_moments draws fold_in(key, 0)
  xs = np.asarray(distributions.gaussian(jax.random.fold_in(key, 0), n, d, dtype=jnp.float64))
  phi = np.concatenate([np.asarray(lazy_training.coupling_features(w0, jnp.asarray(xs))),
                        np.ones((n, 1))], axis=1)
  ys = np.maximum(xs @ np.asarray(w_d) - c, 0)
  res = ys - phi @ np.linalg.lstsq(phi, ys, rcond=None)[0]
  np.testing.assert_allclose(float(best["linearized"]), np.mean(res ** 2) / np.mean(ys ** 2),
                             rtol=1e-6)
  assert float(best["linearized"]) < float(best["random_features"])   # a superset of features


def test_paper_threshold_by_hand():
  # d = 8: ψ has m = 16, a = 4m + 2 = 66 ReLUs; c = 7: E[<w*,x> − 7]_+² with ‖w*‖ = 8.
  from scipy import stats
  s, c = 8.0, 7.0
  t = c / s
  second = s * s * ((1 + t * t) * stats.norm.sf(t) - t * stats.norm.pdf(t))
  assert lazy_training.paper_relative_threshold(8, 7.0) == pytest.approx(
      1 / (50 * 66 ** 2 * second), rel=1e-10)


def _summary_rows(config, *, w_move_exp=-2.0, full=1e-5, rf=0.5, lin=0.3, best=(0.4, 0.2)):
  """Rows of a three-width lazy part (w_move ∝ r^w_move_exp, flips and gap falling) and
  one neuron width with the given relative errors and best fits."""
  rows = []
  for r in config.widths:
    for regime in ("full", "random_features", "linearized"):
      rows.append(dict(part="lazy", activation="relu", r=r, regime=regime, seed=0,
                       step=config.steps, test_hinge=0.5, test_error=0.2,
                       w_move=float(r) ** w_move_exp, sign_flips=1.0 / r, u_norm=1.0,
                       **(dict(w_move_abs=1.0 / r, out_gap=1.0 / r) if regime == "full"
                          else {})))
  for r in config.neuron_widths:
    for regime, err in (("full", full), ("random_features", rf), ("linearized", lin)):
      fit = dict(random_features=best[0], linearized=best[1]).get(regime)
      rows.append(dict(part="neuron", r=r, regime=regime, seed=0, step=config.neuron_steps,
                       test_error=err, w_move=0.1, sign_flips=0.1,
                       **({} if fit is None else {"best_fit_error": fit})))
  return rows


def test_verdict_parts_and_their_criteria():
  config = cfg.get_config("smoke")
  config.widths = (16, 64, 256)
  s = lazy_training.summarize(config, _summary_rows(config))
  assert s["verdict"] == "holds" and s["holds"] and s["verdict_reasons"] == []
  s = lazy_training.summarize(config, _summary_rows(config, w_move_exp=-0.5))
  assert s["verdict"] == "fails" and s["verdict_reasons"] == ["relu: w_move ∝ r^-0.50, not "
                                                             "below r^-1"]
  config.w_move_exponent_max = 0.0             # the criterion is the config's
  assert lazy_training.summarize(config, _summary_rows(config, w_move_exp=-0.5))["holds"]
  # a lazy twin that learns the neuron contradicts the claim
  s = lazy_training.summarize(config, _summary_rows(config, lin=1e-5))
  assert s["verdict"] == "fails" and "a lazy twin learned it" in s["verdict_reasons"][0]
  # a full net at the tolerance but not below a twin's best readout: fails
  s = lazy_training.summarize(config, _summary_rows(config, best=(0.4, 1e-6)))
  assert s["verdict"] == "fails" and "not below the best readout" in s["verdict_reasons"][0]
  # a full net that has not reached the tolerance: nothing reached, inconclusive
  s = lazy_training.summarize(config, _summary_rows(config, full=1e-2))
  assert s["verdict"] == "inconclusive" and "did not reach" in s["verdict_reasons"][0]
