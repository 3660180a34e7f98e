"""lazy_training: the smoke run end to end, config validation, the exponent verdict."""
import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

from conftest import load_config
from rfjax import experiments
from rfjax import plots
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
  fig = plots.PLOTTERS.get("lazy_training")(config, rows, dict(s, experiment="lazy_training"))
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
  # The criterion is the config's: a −3.5 prediction for smooth σ makes sincos hold too.
  config.activations, config.out_gap_exponent_smooth = ("relu", "sincos"), -3.5
  assert lazy_training.summarize(config, rows)["verdict"] == "holds"


def test_noisy_seeds_make_a_straddling_interval_inconclusive():
  config = _cfg()
  config.widths, config.num_seeds = (16, 64, 256), 4
  s = lazy_training.summarize(config, _rows(config, gap_exp=-3.3, noise=1.0, seed=3))
  e = s["lazy"]["relu"]["exponents"]["out_gap"]
  assert e["hi"] - e["lo"] > 0.5
  assert e["verdict"] == lazy_training.judge_exponent(
      stats.Rate(e["slope"], e["lo"], e["hi"], 0.9, 3), -3.5, 0.25, 3)


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
