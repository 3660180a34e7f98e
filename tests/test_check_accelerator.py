"""scripts/check_accelerator.py: the tolerance rules on hand-made rows; on a CPU-only machine
the default backend is the CPU, and two runs of the same seeds agree (small sizes here);
a deliberately perturbed row makes the check fail and names the field."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "check_accelerator.py")
spec = importlib.util.spec_from_file_location("check_accelerator", SCRIPT)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

SMALL_LINEAR_RF = ["--experiments=linear_rf", "--extra=linear_rf:--config.ds=(4,)",
                   "--extra=linear_rf:--config.ratios=(0.5,)",
                   "--extra=linear_rf:--config.num_seeds=8",
                   "--extra=linear_rf:--config.tail_ds=(4,)",
                   "--extra=linear_rf:--config.tail_seeds=16"]
SMALL_TIMINGS = ["--fit_n=20000", "--fit_r=128", "--gram_r=128", "--gemm_n=256"]


def _row(key, **fields):
  return dict(key=key, cell="c", **fields)


def test_exact_rows_agree_to_1e_10_relative_and_no_further():
  a = [_row("k0", x=1.2345678901234, n=3, name="relu"), _row("k1", x=-7.0, n=4, name="t")]
  same = [dict(r) for r in a]
  assert check.compare_rows(a, same, check.EXACT) == []
  close = [dict(a[0], x=a[0]["x"] * (1 + 5e-11)), a[1]]
  assert check.compare_rows(close, a, check.EXACT) == []
  off = [dict(a[0], x=a[0]["x"] * (1 + 1e-9)), a[1]]
  (problem,) = check.compare_rows(off, a, check.EXACT)
  assert problem.startswith("k0: x ") and "relative difference 1e-09" in problem


def test_rounding_level_values_compare_absolutely_but_correlations_relatively():
  a = [_row("k", residual=1.1e-16, mean_abs_corr=3e-89)]
  b = [_row("k", residual=2.2e-16, mean_abs_corr=3e-89)]
  assert check.compare_rows(a, b, check.EXACT) == []
  c = [_row("k", residual=1.1e-16, mean_abs_corr=3.01e-89)]
  (problem,) = check.compare_rows(c, b, check.EXACT)
  assert "mean_abs_corr" in problem


def test_training_tolerance_and_structural_mismatches():
  a = [_row("k0", test_hinge=0.500, step=100, seconds=1.0)]
  assert check.compare_rows([_row("k0", test_hinge=0.504, step=100, seconds=9.0)], a,
                            check.TRAINING) == []               # wall time is skipped
  assert check.compare_rows([_row("k0", test_hinge=0.52, step=100, seconds=1.0)], a,
                            check.TRAINING)
  assert check.compare_rows([_row("k0", test_hinge=0.5, step=101, seconds=1.0)], a,
                            check.TRAINING)                    # integers exactly
  problems = check.compare_rows([_row("k1", test_hinge=0.5, step=100)], a, check.TRAINING)
  assert problems == ["k1: only on the backend", "k0: only on the CPU"]
  assert check.compare_rows([_row("k0", test_hinge=[0.5, 0.6])],
                            [_row("k0", test_hinge=[0.5, 0.7])], check.TRAINING)
  assert check.compare_rows([_row("k0", v=float("nan"))], [_row("k0", v=float("nan"))],
                            check.EXACT) == []


def test_every_registered_experiment_has_a_stated_tolerance():
  from rfjax import experiments
  from rfjax import runner  # noqa: F401 - fills the registry
  assert set(experiments.names()) <= set(check.TOLERANCES)


def _script(*args, cache=None):
  env = dict(os.environ, PYTHONPATH=ROOT)
  if cache:
    env["RFJAX_CACHE_DIR"] = cache
  env.pop("JAX_PLATFORMS", None)
  return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                        env=env, cwd=ROOT)


def test_cpu_against_itself_passes_and_a_perturbed_row_fails(tmp_path):
  out = str(tmp_path / "out")
  cache = str(tmp_path / "cache")
  res = _script("--out", out, *SMALL_LINEAR_RF, *SMALL_TIMINGS, cache=cache)
  assert res.returncode == 0, res.stdout + res.stderr[-3000:]
  assert "backend: cpu" in res.stdout and "rows agree with the CPU" in res.stdout
  report = json.load(open(os.path.join(out, "check_accelerator.json")))
  assert report["agree"] and report["rows"]["linear_rf"]["rows"] == 8 + 16
  t = report["timings"]
  assert t["rf_fit"]["seconds"] > 0 and t["gemm"]["gflops"] > 0
  assert t["exact_gram"]["r"] == 128 and t["exact_gram"]["seconds"] > 0
  assert 0 <= t["rf_fit"]["error"] < 1
  # Perturb one float of one row of the backend's run by 1e-8 (relative): the rerun
  # resumes both runs (no cell is recomputed) and must now fail on that row and field.
  path = os.path.join(out, "default-cpu", "linear_rf", "results.jsonl")
  lines = open(path).read().splitlines()
  row = json.loads(lines[3])
  row["error"] *= 1 + 1e-8
  lines[3] = json.dumps(row, sort_keys=True)
  open(path, "w").write("\n".join(lines) + "\n")
  res = _script("--out", out, "--no_timings", *SMALL_LINEAR_RF, cache=cache)
  assert res.returncode == 1, res.stdout + res.stderr[-3000:]
  assert "1 MISMATCHES" in res.stdout and f"{row['key']}: error " in res.stdout
  assert "ROWS DISAGREE WITH THE CPU" in res.stdout


def test_bad_arguments_are_one_line_errors(tmp_path):
  res = _script("--out", str(tmp_path), "--experiments=nope", "--no_timings")
  assert res.returncode == 2 and "--experiments: unknown nope" in res.stderr
  res = _script("--out", str(tmp_path), "--extra=linear_rf", "--no_timings")
  assert res.returncode == 2 and "--extra" in res.stderr


@pytest.mark.slow
def test_every_experiment_smoke_agrees_with_itself_on_cpu(tmp_path):
  res = _script("--out", str(tmp_path / "all"), *SMALL_TIMINGS, cache=str(tmp_path / "c"))
  assert res.returncode == 0, res.stdout + res.stderr[-3000:]
