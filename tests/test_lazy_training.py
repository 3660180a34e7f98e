"""lazy_training: the smoke run end to end, config validation, the exponent verdict."""
import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

from conftest import load_config
from rfjax import experiments
from rfjax import stats
from rfjax import validation
from rfjax.experiments import lazy_training


def _cfg(variant="smoke"):
  return load_config("lazy_training", variant)


def test_smoke_run_and_its_figure():
  config = _cfg()
  rows = experiments.run("lazy_training", config, jax.random.key(0))
  assert len(rows) == len(config.widths) * config.num_seeds * 3
  full = [r for r in rows if r["regime"] == "full"]
  assert all(r["w_move"] > 0 and r["w_move_abs"] > 0 and np.isfinite(r["out_gap"])
             for r in full)
  rf = [r for r in rows if r["regime"] == "random_features"]
  assert all(r["w_move"] == 0 and r["sign_flips"] == 0 for r in rf)
  s = lazy_training.summarize(config, rows)
  assert {"claim", "prediction", "measured", "holds", "verdict", "departures"} <= set(s)
  e = s["lazy"]["relu"]["exponents"]
  assert np.isfinite(e["w_move_abs"]["slope"]) and e["w_move_abs"]["lo"] <= e["w_move_abs"]["hi"]
  # w_move = w_move_abs / ‖W_0‖_F, and ‖W_0‖_F ∝ √r: the two slopes differ by about −1/2.
  assert e["w_move"]["slope"] == pytest.approx(e["w_move_abs"]["slope"] - 0.5, abs=0.1)
  # Two widths give no rate: inconclusive, never holds.
  assert s["verdict"] == "inconclusive" and not s["holds"]
  assert "relu: w_move_abs positive at every seed at 2 width(s); a rate needs three" in \
      s["verdict_reasons"]
  assert s["would_fail_if"] and "not the theorem's η" in s["departures"]
  fig = lazy_training.figure(config, rows, dict(s, experiment="lazy_training"))
  plt.close(fig)


@pytest.mark.parametrize("field,value", [("widths", (64,)), ("activations", ("sincos",)),
                                         ("activations", ("relu", "nope")),
                                         ("num_seeds", 1), ("w_move_abs_exponent", 2.0),
                                         ("out_gap_exponent_relu", float("nan")),
                                         ("exponent_tolerance", 0.0),
                                         ("interval_level", 1.0), ("num_boot", 10)])
def test_validation(field, value):
  config = _cfg()
  config[field] = value
  with pytest.raises(validation.ConfigError):
    lazy_training.validate(config)


def test_default_config_validates():
  lazy_training.validate(_cfg(""))


def test_predicted_exponents_come_from_the_config():
  config = _cfg("")
  assert lazy_training.predicted_exponent(config, "relu", "w_move_abs") == -1.5
  assert lazy_training.predicted_exponent(config, "relu", "sign_flips") == -2.0
  assert lazy_training.predicted_exponent(config, "sincos", "sign_flips") is None
  assert lazy_training.predicted_exponent(config, "relu", "out_gap") == -3.5
  assert lazy_training.predicted_exponent(config, "sincos", "out_gap") == -4.0
  config.out_gap_exponent_smooth = -3.0
  assert lazy_training.predicted_exponent(config, "sincos", "out_gap") == -3.0


@pytest.mark.parametrize("lo,hi,widths,want", [
    (-2.1, -1.9, 3, "holds"), (-2.5, -2.3, 3, "fails"), (-1.6, -1.2, 3, "fails"),
    (-2.3, -1.9, 3, "inconclusive"), (-2.1, -1.9, 2, "inconclusive"),
    (float("nan"), -1.9, 3, "inconclusive")])
def test_judge_exponent_by_hand(lo, hi, widths, want):
  rate = stats.Rate(slope=-2.0, lo=lo, hi=hi, level=0.9, num_points=widths)
  assert lazy_training.judge_exponent(rate, -2.0, 0.25, widths) == want


def _rows(config, gap_exp=-3.5, flip_exp=-2.0, move_exp=-1.5, noise=0.05, seed=0):
  """Synthetic full/RF/linearised rows: each quantity ∝ r^exp times seed noise."""
  rng = np.random.default_rng(seed)
  rows = []
  for act in config.activations:
    for r in config.widths:
      for s in range(config.num_seeds):
        f = lambda e: float(r) ** e * np.exp(noise * rng.normal())
        w_abs = f(move_exp)
        for regime in ("full", "random_features", "linearized"):
          rows.append(dict(activation=act, r=r, regime=regime, seed=s, step=config.steps,
                           test_hinge=0.5, test_error=0.2, u_norm=1.0,
                           w_move=w_abs / np.sqrt(r) if regime == "full" else 0.0,
                           sign_flips=f(flip_exp) if regime == "full" else 0.0,
                           **(dict(w_move_abs=w_abs, out_gap=f(gap_exp))
                              if regime == "full" else {})))
  return rows


def test_verdict_against_the_predicted_exponents():
  config = _cfg()
  config.widths, config.num_seeds, config.activations = (16, 64, 256, 1024), 6, ("relu", "sincos")
  rows = _rows(config, gap_exp=-3.5)
  s = lazy_training.summarize(config, rows)
  # sincos's gap prediction is −4: a −3.5 gap is outside −4 ± 0.25 for it, inside for relu.
  assert s["lazy"]["relu"]["exponents"]["out_gap"]["verdict"] == "holds"
  assert s["lazy"]["sincos"]["exponents"]["out_gap"]["verdict"] == "fails"
  assert s["verdict"] == "fails"
  assert any(x.startswith("sincos: out_gap ∝ r^-3.5") and "(outside)" in x
             for x in s["verdict_reasons"])
  config.activations = ("relu",)
  s = lazy_training.summarize(config, _rows(config))
  assert s["verdict"] == "holds" and s["verdict_reasons"] == []
  # The fitted slope is the least-squares slope of log(seed mean) on log r (numpy polyfit).
  mean = [np.mean([x["out_gap"] for x in rows if x["activation"] == "relu" and x["r"] == r
                   and x["regime"] == "full"]) for r in config.widths]
  slope = np.polyfit(np.log(config.widths), np.log(mean), 1)[0]
  assert s["lazy"]["relu"]["exponents"]["out_gap"]["slope"] == pytest.approx(slope, rel=1e-12)
  np.testing.assert_allclose(s["lazy"]["relu"]["exponents"]["out_gap"]["local_slopes"],
                             np.diff(np.log(mean)) / np.diff(np.log(config.widths)), rtol=1e-12)
  # The criterion is the config's: a −3.5 prediction for smooth σ makes sincos hold too.
  config.activations, config.out_gap_exponent_smooth = ("relu", "sincos"), -3.5
  assert lazy_training.summarize(config, rows)["verdict"] == "holds"


def test_seeds_that_disagree_give_a_straddling_interval_inconclusive():
  """At the largest width the seeds spread over two decades: the fitted slope stays near the
  prediction, but the bootstrap interval straddles the band's edge."""
  config = _cfg()
  config.widths, config.num_seeds = (16, 64, 256), 4
  rows = _rows(config, noise=0.0)
  spread = {0: 0.1, 1: 1.0, 2: 1.0, 3: 10.0}
  for x in rows:
    if x["r"] == 256 and x["regime"] == "full":
      x["out_gap"] *= spread[x["seed"]]
  e = lazy_training.summarize(config, rows)["lazy"]["relu"]["exponents"]["out_gap"]
  assert e["lo"] < -3.5 + 0.25 < e["hi"]
  assert e["verdict"] == "inconclusive"


def test_a_zero_at_some_seed_is_no_rate():
  config = _cfg()
  config.widths = (16, 64, 256)
  rows = _rows(config)
  for x in rows:
    if x["r"] == 256 and x["seed"] == 0 and x["regime"] == "full":
      x["sign_flips"] = 0.0
  s = lazy_training.summarize(config, rows)
  assert s["lazy"]["relu"]["exponents"]["sign_flips"]["verdict"] == "inconclusive"
  assert "relu: sign_flips positive at every seed at 2 width(s); a rate needs three" in \
      s["verdict_reasons"]


def test_zero_first_layer_step_is_the_random_features_regime():
  """_lazy_seed trains random features as the full net with η_W = 0: over 30 hinge steps,
  W stays bit-identical and U matches training's own random_features regime."""
  import functools
  import jax.numpy as jnp
  from rfjax import networks, training
  d, r, lr = 3, 8, 0.5 / 8
  J, c = lazy_training._polynomial(0, d, 2)
  sample = functools.partial(lazy_training._poly_sample, J_md=jnp.asarray(J), c_m=jnp.asarray(c),
                             d=d, batch=1)
  net = networks.make(r, "relu", dtype=jnp.float64)
  p0 = networks.init(net, jax.random.key(0), d)
  x = jnp.zeros((4, d), jnp.float64)
  finals = []
  for regime, lr_w in (("full", 0.0), ("random_features", None)):
    tr = training.make_trainer(net, regime, lr=lr, lr_w=lr_w, loss="hinge")
    state, _ = training.train(tr, p0, jax.random.key(1), sample, steps=30, log_every=30,
                              x_test=x, y_test=jnp.ones(4), x_probe=x)
    finals.append(state.params["params"])
  np.testing.assert_array_equal(finals[0]["w"], p0["params"]["w"])
  np.testing.assert_array_equal(finals[1]["w"], p0["params"]["w"])
  np.testing.assert_allclose(finals[0]["u"], finals[1]["u"], rtol=1e-14, atol=1e-15)
  assert np.abs(np.asarray(finals[0]["u"])).max() > 0
