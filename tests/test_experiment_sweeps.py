"""Every experiment's smoke sweep: the same rows on 1 and on 8 devices, and from a plain
Python loop over the same seeds; every seed axis goes through sweep.over_seeds.

Each mode runs in a subprocess (the device count is fixed when JAX starts): 1 device
(vmapped, then under sweep.python_loop()), and 8 simulated CPU devices. The fast
experiments share one subprocess per mode; the heavy ones are marked slow.
"""
import functools
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rfjax import experiments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Smoke runs that take more than ~5 s each on 2 CPU cores (and so 3x that here).
HEAVY = ("integral_rep", "lazy_training", "neuron_contrast", "neuron_gd", "polynomial_sgd", "psi_correlation",
         "relu_neuron_rf")
FAST = tuple(n for n in experiments.names() if n not in HEAVY)

_SCRIPT = textwrap.dedent("""
    import importlib.util, json, os, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    from rfjax import experiments, results, sweep

    names, modes, out_path = sys.argv[1].split(","), sys.argv[2].split(","), sys.argv[3]
    calls = []
    _over_seeds = sweep.over_seeds
    def counting(fn, keys, *args, **kw):
      calls.append(int(keys.shape[0]))
      return _over_seeds(fn, keys, *args, **kw)
    sweep.over_seeds = counting            # experiments call it through the module

    def smoke(name):
      spec = importlib.util.spec_from_file_location("cfg_" + name,
                                                    os.path.join("configs", name + ".py"))
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      return module.get_config("smoke")

    out = dict(devices=jax.device_count())
    for name in names:
      config, exp = smoke(name), experiments.get(name)
      root = jax.random.key(config.seed)
      for mode in modes:
        rows, cells = [], []
        with sweep.python_loop(mode == "loop"):
          for cell in exp.cells(config):
            calls.clear()
            got = exp.run_cell(config, cell, experiments.cell_prng_key(root, name, cell))
            seeds = sorted({r["seed"] for r in got if "seed" in r})
            cells.append(dict(swept=sum(calls), seeds=len(seeds)))
            rows.extend(got)
        out[name + "/" + mode] = dict(rows=results.to_json(rows), cells=cells)
    with open(out_path, "w") as f:
      json.dump(out, f)
""")


@functools.cache
def _run(names: tuple[str, ...], n_dev: int, modes: str, tmp: str) -> dict:
  path = os.path.join(tmp, f"{'-'.join(names)}-{n_dev}.json")
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}",
             JAX_PLATFORMS="cpu")
  res = subprocess.run([sys.executable, "-c", _SCRIPT, ",".join(names), modes, path],
                       cwd=ROOT, env=env, capture_output=True, text=True)
  assert res.returncode == 0, res.stderr[-3000:]
  with open(path) as f:
    out = json.load(f)
  assert out["devices"] == n_dev
  return out


def _outputs(name: str, tmp_path_factory) -> tuple[dict, dict, dict]:
  """(1 device vmapped, 1 device loop, 8 devices) for `name`, run with its group."""
  group = FAST if name in FAST else (name,)
  tmp = str(tmp_path_factory.getbasetemp())
  one = _run(group, 1, "vmap,loop", tmp)
  eight = _run(group, 8, "vmap", tmp)
  return one[f"{name}/vmap"], one[f"{name}/loop"], eight[f"{name}/vmap"]


# Fields written as float64 but computed in float32 arithmetic (float32 SGD, float32
# feature sums), so float32 tolerances apply to them.
FLOAT32_FIELDS = {"neuron_gd": {"relative_error"}, "rf_concentration": {"sup_error"},
                  # means (and paired differences) of float32 margins, summed in float64
                  "polynomial_sgd": {"test_hinge", "test_hinge_se", "minus_star",
                                     "minus_star_se", "minus_P", "minus_P_se", "minus_rf",
                                     "minus_rf_se", "w_effect", "w_effect_se", "online_mean"},
                  # float32 SGD; errors and their sums in float64 from float32 predictions
                  "neuron_contrast": {"error", "error_se", "diff_random_features",
                                      "diff_random_features_se", "diff_linearized",
                                      "diff_linearized_se", "rmax_u", "w_move", "curve_error",
                                      # least-squares weights: rounding × the Gram's condition
                                      "best_fit_rmax_u"}}
# neuron_contrast's mean-field SGD (η_W = c·r) amplifies float32 rounding over its steps: the
# runs on 1 and 8 devices (batched differently) agree to about 1e-5 there, not 1e-6.
FLOAT32_TOL = {"neuron_contrast": 1e-4}
# relu_neuron_rf's certified lower bound is error − (Frank–Wolfe gap), and the gap
# multiplies the gradient's rounding by the box size: float64 tolerance times (1 + B).
B_SCALED_FIELDS = {"relu_neuron_rf": {"certified_lower"}}


def _is_float32(x: float) -> bool:
  """A value that float32 represents exactly (so it may come from a float32 computation)."""
  return float(np.float32(x)) == x


def _assert_rows_close(name: str, got: list[dict], want: list[dict], what: str) -> None:
  """Same rows, same fields; numbers to 1e-6 (float32 values) or 1e-12 (float64 values)."""
  assert len(got) == len(want), what
  for i, (g, w) in enumerate(zip(got, want)):
    assert sorted(g) == sorted(w), f"{what}: row {i} fields"
    for k in w:
      a, b = g[k], w[k]
      if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a != b:
        _assert_rows_close(name, [{k: v} for v in a], [{k: v} for v in b], f"{what}: row {i}")
      elif isinstance(b, float) and isinstance(a, float) and a != b:
        f32 = (_is_float32(a) and _is_float32(b)) or k in FLOAT32_FIELDS.get(name, ())
        tol = FLOAT32_TOL.get(name, 1e-6) if f32 else 1e-12
        if k in B_SCALED_FIELDS.get(name, ()):
          tol *= 1 + w["B"]
        assert math.isclose(a, b, rel_tol=tol, abs_tol=tol), \
            f"{what}: row {i} {k}: {a!r} vs {b!r} (tolerance {tol:g})"
      else:
        assert a == b, f"{what}: row {i} {k}: {a!r} vs {b!r}"


def _params():
  return [pytest.param(name, marks=[pytest.mark.slow] if name in HEAVY else [])
          for name in experiments.names()]


@pytest.mark.parametrize("name", _params())
def test_rows_agree_on_1_and_8_devices_and_with_a_python_loop(name, tmp_path_factory):
  one, loop, eight = _outputs(name, tmp_path_factory)
  assert one["rows"], name
  _assert_rows_close(name, eight["rows"], one["rows"], f"{name}: 8 devices vs 1")
  _assert_rows_close(name, loop["rows"], one["rows"], f"{name}: Python loop vs vmapped")


@pytest.mark.parametrize("name", _params())
def test_every_seed_goes_through_over_seeds(name, tmp_path_factory):
  one, _, _ = _outputs(name, tmp_path_factory)
  for i, cell in enumerate(one["cells"]):
    assert cell["seeds"] == 0 or cell["swept"] >= cell["seeds"], \
        f"{name}: cell {i} has {cell['seeds']} seeds, {cell['swept']} through over_seeds"
  assert any(c["seeds"] for c in one["cells"]), f"{name}: no seed rows"
