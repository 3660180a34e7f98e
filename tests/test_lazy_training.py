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


@pytest.mark.parametrize("field,value", [("widths", (64,)), ("activations", ("sincos",)),
                                         ("neuron_log_every", 7), ("neuron_kink", 5.0)])
def test_validation(field, value):
  config = cfg.get_config("smoke")
  config[field] = value
  with pytest.raises(validation.ConfigError):
    lazy_training.validate(config)
