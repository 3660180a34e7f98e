"""benchmarks/run.py --quick: every workload runs, its numbers are finite and the fits agree.

Speed is not checked here (the machine running the tests is shared and noisy); the
targets are reported by the benchmark itself.
"""
import json
import math
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_and_implementations_agree(tmp_path):
  out = tmp_path / "quick.json"
  proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                         "--out", str(out)], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  report = json.loads(out.read_text())
  names = {c["name"] for c in report["cases"]}
  assert {"gemm", "ridge", "sgd_b1", "sgd_b64", "sweep", "psi"} <= names
  assert sum(c["workload"] == "scaling" for c in report["cases"]) >= 2
  impls = {(r["case"], r["impl"]) for r in report["rows"]}
  for peer in ("numpy_scipy", "sklearn", "torch"):
    assert ("ridge", peer) in impls
  assert ("sgd_b64", "torch") in impls and ("sweep", "numpy_loop") in impls
  assert ("boxpath", "rfjax") in impls and ("boxpath", "quadprog") in impls
  assert any(c["check"].startswith("boxpath error") for c in report["checks"])
  for row in report["rows"]:
    assert math.isfinite(row["time_s"]) and row["time_s"] > 0, row
    assert math.isfinite(row["peak_mib"]) and row["peak_mib"] > 0, row
  for case in report["cases"]:
    assert case["runs"] >= 5 and case["warmup"] == 1
    for v in case["impls"].values():
      assert len(v["times_s"]) == case["runs"]
  assert report["checks"] and all(c["ok"] for c in report["checks"]), [
      c for c in report["checks"] if not c["ok"]]
  # The agreement checks compare numbers that are really there.
  mse = {c["impl"]: c for c in report["rows"] if c["case"] == "ridge"}
  assert len(mse) == 4
  for t in report["targets"]:
    assert t["value"] is not None and math.isfinite(t["value"]), t
  assert report["gemm_gflops"] > 0
