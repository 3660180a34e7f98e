"""examples/: the script and the notebook run as shipped (at smaller sizes), write their figure,
and their numbers agree with independent computations: the exact ψ-correlations with
rfjax.psi recomputed here from the drawn features, Monte Carlo within its standard errors,
the example's closed-form moments with float64 quadrature of the same σ, and the certified
fit curve's invariants (lower bound ≤ error ≤ E ψ², non-increasing in r·B)."""
import functools
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib.image
import nbclient
import nbformat
import numpy as np
import pytest

from rfjax import activations
from rfjax import features
from rfjax import gaussian
from rfjax import psi

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Small sizes for the test run (the shipped defaults are the figure's).
SMALL = dict(ds=(2, 3), mc_ds=(2,), num_features=2, mc_n=2**14, fit_d=3, rs=(8,),
             rBs=(10.0, 1e4))


@pytest.fixture(scope="module")
def example():
  """The example script imported as a module: registers leaky_relu and leaky_sphere here."""
  spec = importlib.util.spec_from_file_location("_example_new_feature_map",
                                                EXAMPLES / "new_feature_map.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  yield module
  features.FEATURE_MAPS.unregister("leaky_sphere")
  activations.ACTIVATIONS.unregister("leaky_relu")


def _env():
  env = dict(os.environ)
  rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + rest)
  return env


def _check_outputs(out: pathlib.Path) -> None:
  """The figure is a real image; the numbers agree with independent computations."""
  img = matplotlib.image.imread(out / "new_feature_map.png")
  assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 800
  assert float(np.std(img[..., :3])) > 0.05            # not a blank canvas
  data = json.loads((out / "new_feature_map.json").read_text())
  psi_rows = data["psi"]
  assert [r["d"] for r in psi_rows] == list(SMALL["ds"])
  for row in psi_rows:
    assert row["method"] == "closed_form"
    pp = psi.psi_params(row["d"])
    # The exact value, recomputed here from the drawn features (s_i = ‖w_i‖, b_i).
    want = np.mean([float(psi.mean_abs_correlation(s, b, row["d"], pp.R, pp.m, "leaky_relu"))
                    for s, b in zip(row["s"], row["b"])])
    np.testing.assert_allclose(row["exact"], want, rtol=1e-12)
    if "monte_carlo" in row:
      # Monte Carlo over inputs and 64 sampled w*, against the exact mean over all w*.
      assert abs(row["monte_carlo"] - row["exact"]) <= 4.0 * row["mc_stderr"], row
  assert psi_rows[-1]["exact"] < psi_rows[0]["exact"]   # falls with d
  fit = data["fit"]
  assert sorted({r["r"] for r in fit}) == list(SMALL["rs"])
  for r in SMALL["rs"]:
    rows = sorted((row for row in fit if row["r"] == r), key=lambda row: row["rB"])
    err = np.array([row["relative_error"] for row in rows])
    low = np.array([row["relative_lower"] for row in rows])
    assert np.all(low <= err + 1e-9) and np.all(err <= 1.0 + 1e-9)   # ψ has mean 0: u = 0
    assert np.all(np.diff(err) <= 1e-9)                                 # larger box, no worse
    assert np.all(err >= rows[0]["ls_relative_error"] - 1e-9)          # B = ∞ is the floor


def test_script_runs_and_writes_its_figure(tmp_path, example):
  del example  # registers leaky_relu in this process, for the recomputation
  fmt = lambda v: ",".join(str(x) for x in v)                   # noqa: E731
  args = [f"--out={tmp_path / 'out'}"] + [f"--{k}={fmt(v) if isinstance(v, tuple) else v}"
                                          for k, v in SMALL.items()]
  proc = subprocess.run([sys.executable, str(EXAMPLES / "new_feature_map.py"), *args],
                        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "all checks pass" in proc.stdout
  _check_outputs(tmp_path / "out")


def test_notebook_is_the_script_and_is_stored_without_outputs(example):
  nb = nbformat.read(EXAMPLES / "new_feature_map.ipynb", as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert all(c.outputs == [] and c.execution_count is None for c in code)
  definition = next(c.source for c in code if 'features.register("leaky_sphere"' in c.source)
  body = definition.rsplit("\n", 1)[0]                   # less its last line (a print)
  assert body in pathlib.Path(example.__file__).read_text()


def test_notebook_executes_and_writes_its_figure(tmp_path, monkeypatch, example):
  del example
  nb = nbformat.read(EXAMPLES / "new_feature_map.ipynb", as_version=4)
  at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
  params = (f"DS, MC_DS, MC_N, NUM_FEATURES = {SMALL['ds']}, {SMALL['mc_ds']}, {SMALL['mc_n']}, "
            f"{SMALL['num_features']}\nFIT_D, RS, RBS = {SMALL['fit_d']}, {SMALL['rs']}, "
            f"{SMALL['rBs']}\nOUT = {str(tmp_path / 'out')!r}")
  nb.cells.insert(at + 1, nbformat.v4.new_code_cell(params))
  # A kernel spec of this interpreter, found first (JUPYTER_PATH), so the kernel runs the test
  # environment's ipykernel and this checkout's rfjax.
  spec_dir = tmp_path / "jupyter" / "kernels" / "rfjax-test"
  spec_dir.mkdir(parents=True)
  (spec_dir / "kernel.json").write_text(json.dumps(dict(
      argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
      display_name="rfjax test", language="python")))
  monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
  monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])
  client = nbclient.NotebookClient(nb, kernel_name="rfjax-test", timeout=600,
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                    for o in c.outputs)
  assert "all checks pass" in outputs and "('exact', 'closed_form')" in outputs
  _check_outputs(tmp_path / "out")


def test_example_closed_forms_agree_with_quadrature(example):
  """The example's moments by linearity against split quadrature of the same σ."""
  del example
  act = activations.get("leaky_relu")
  quad = act._replace(name="leaky_relu_quadrature",
                      gaussian=activations.GaussianRules(kinks=(0.0,)))
  s = jnp.array([0.5, 1.0, 2.0])
  b = jnp.array([-0.7, 0.0, 1.3])
  rho = jnp.array([-0.6, 0.3, 0.9])
  pp = psi.psi_params(2)

  @functools.partial(jax.jit, static_argnums=0)
  def moments(a):   # one program per record, not op by op
    return (gaussian.act_mean(a, s, b), gaussian.act_second(a, s, b), gaussian.act_stein(a, s, b),
            gaussian.act_cross(a, s, b, a, s[::-1], b[::-1], rho),
            psi.ridge_correlation(s, b, rho, pp.R, pp.m, a))

  closed, integrated = moments(act), moments(quad)
  for name, got, want, rtol in zip(("mean", "second", "stein", "cross", "psi"), closed,
                                   integrated, (1e-12, 1e-12, 1e-12, 1e-10, 1e-9)):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-15, err_msg=name)
