"""polynomial_sgd: the smoke run end to end, the polynomial, and config validation."""
import jax
import numpy as np
import pytest

from rfjax import experiments
from rfjax import validation
from rfjax.experiments import polynomial_sgd
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "cfg_polynomial_sgd", os.path.join(os.path.dirname(__file__), "..", "configs", "polynomial_sgd.py"))
cfg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cfg)


def test_random_polynomial_is_balanced_and_bounded():
  J, c = polynomial_sgd.random_polynomial(0, 3, 2)
  assert J.shape == (10, 3) and np.all(np.abs(c) <= 1)
  x = jax.random.normal(jax.random.key(0), (4, 3))
  expect = c[0] + sum(c[m] * np.prod(np.asarray(x) ** J[m], axis=1) for m in range(1, 10))
  np.testing.assert_allclose(polynomial_sgd.polynomial(x, J, c), expect, rtol=1e-5, atol=1e-6)


def test_smoke_run():
  config = cfg.get_config("smoke")
  rows = experiments.run("polynomial_sgd", config, jax.random.key(0))
  regimes = {r["regime"] for r in rows}
  assert regimes == {"full", "random_features", "linearized", "best_readout"}
  rf = [r for r in rows if r["regime"] == "random_features"]
  assert all(r["w_move"] == 0 and r["sign_flips"] == 0 for r in rf)
  s = polynomial_sgd.summarize(config, rows)
  assert {"claim", "prediction", "measured", "holds", "T_theory"} <= set(s)
  assert all(0 <= c["L_star"] <= 1.5 for c in s["cells"])


@pytest.mark.parametrize("field,value", [("activation", "relu"), ("widths", (0,)),
                                         ("log_every", 7), ("n_probe", 10**6)])
def test_validation(field, value):
  config = cfg.get_config("smoke")
  config[field] = value
  with pytest.raises(validation.ConfigError):
    polynomial_sgd.validate(config)
