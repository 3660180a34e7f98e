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
  assert s["verdict"] in ("holds", "fails") and s["holds"] == (s["verdict"] == "holds")
  # The departures say plainly that the best logged step is chosen on the test set.
  assert "BEST of the logged steps" in s["departures"] and "test set" in s["departures"]
  assert str(s["T_theory"]) in s["departures"]
  # A full net worse than L_D(W_0, U*) + ε fails, naming the width.
  worse = [dict(x, test_hinge=x["test_hinge"] + 2.0) if x["regime"] == "full" else x
           for x in rows]
  w = polynomial_sgd.summarize(config, worse)
  assert w["verdict"] == "fails" and w["verdict_reasons"][0].startswith("r=16: full best-t")


@pytest.mark.parametrize("field,value", [("activation", "relu"), ("widths", (0,)),
                                         ("log_every", 7), ("n_probe", 10**6)])
def test_validation(field, value):
  config = cfg.get_config("smoke")
  config[field] = value
  with pytest.raises(validation.ConfigError):
    polynomial_sgd.validate(config)


def _tiny_config(checkpoint_every):
  config = cfg.get_config("smoke")
  config.widths, config.num_seeds, config.steps, config.log_every = (16,), 2, 200, 50
  config.n_test, config.n_probe, config.n_fit, config.fit_iters = 64, 16, 64, 10
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
        np.testing.assert_allclose(p[k], v, rtol=1e-6, atol=1e-7, err_msg=k)
      else:
        assert p[k] == v


def test_a_cell_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
  from rfjax import sweep
  config, key, ckpt = _tiny_config(50), jax.random.key(4), str(tmp_path / "ckpt")
  segments = []
  over_seeds = sweep.over_seeds

  def counting(fn, keys, *args, **kw):
    if getattr(fn, "func", None) is polynomial_sgd._segment_seed:
      segments.append(int(args[-1]))         # the segment's first log index
    return over_seeds(fn, keys, *args, **kw)

  monkeypatch.setattr(sweep, "over_seeds", counting)
  first = polynomial_sgd.run_cell(config, dict(r=16), key, checkpoint_dir=ckpt)
  assert segments == [0, 1, 2, 3]
  # A killed run leaves its last save (steps 150 of 200; the last segment is not saved).
  assert sorted(os.listdir(ckpt)) == ["150"]
  resumed = polynomial_sgd.run_cell(config, dict(r=16), key, checkpoint_dir=ckpt)
  assert segments[4:] == [3]                 # only the last segment was trained again
  assert resumed == first
  assert polynomial_sgd.run_cell(config, dict(r=16), key) == first   # no checkpoints


def test_checkpoint_every_must_fit_the_log_grid():
  for bad in (30, 75, -50):
    config = _tiny_config(bad)
    with pytest.raises(validation.ConfigError, match="checkpoint_every"):
      polynomial_sgd.validate(config)
  polynomial_sgd.validate(_tiny_config(0))
  polynomial_sgd.validate(_tiny_config(100))
