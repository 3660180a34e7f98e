"""The command line: bad input fails early (one line, exit 2, no files); runs are
reproducible, resume by cell, and refuse to mix configs in one workdir."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "--config=" + os.path.join(ROOT, "configs", "linear_rf.py") + ":smoke"


def _rfjax(*args, cwd=ROOT):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "rfjax.main", *args], cwd=cwd, env=env,
                        capture_output=True, text=True)


@pytest.mark.parametrize("args,field", [
    ([SMOKE, "--config.experiment=nope"], "config.experiment"),
    ([SMOKE, "--config.feature=nope"], "config.feature"),
    ([SMOKE, "--config.ds=(8,0)"], "config.ds"),
    ([SMOKE, "--config.num_seeds=-3"], "config.num_seeds"),
    ([SMOKE, "--config.num_seeds=abc"], "config.num_seeds"),
    ([SMOKE, "--config.nonexistent=3"], "config.nonexistent"),
    (["--config=configs/does_not_exist.py"], "config"),
    ([SMOKE.replace(":smoke", ":bogus")], "config"),
])
def test_bad_input_is_one_line_exit_2_and_no_files(tmp_path, args, field):
  workdir = tmp_path / "w"
  res = _rfjax(*args, f"--workdir={workdir}")
  assert res.returncode == 2, res.stderr
  lines = [l for l in res.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("rfjax: error:"), res.stderr
  assert field in lines[0]
  assert not workdir.exists()


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  res = _rfjax(SMOKE, f"--workdir={blocker}/sub")
  assert res.returncode == 2
  assert "workdir" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_run_is_reproducible_resumes_and_refuses_mixed_configs(tmp_path):
  a, b = tmp_path / "a", tmp_path / "b"
  assert _rfjax(SMOKE, f"--workdir={a}").returncode == 0
  assert _rfjax(SMOKE, f"--workdir={b}").returncode == 0
  rows_a = (a / "linear_rf" / "results.jsonl").read_text()
  assert rows_a == (b / "linear_rf" / "results.jsonl").read_text()
  for name in ("summary.json", "linear_rf.png", "config.json"):
    assert (a / "linear_rf" / name).exists()
  summary = json.loads((a / "linear_rf" / "summary.json").read_text())
  assert {"claim", "prediction", "measured", "holds"} <= set(summary)
  assert summary["failed_cells"] == 0 and summary["failed"] == []
  assert "linear_rf/linear_rf.png" in (a / "report.md").read_text()

  # A rerun computes nothing new and leaves the rows as they were.
  res = _rfjax(SMOKE, f"--workdir={a}")
  assert res.returncode == 0 and "done in" not in res.stderr
  assert (a / "linear_rf" / "results.jsonl").read_text() == rows_a

  # Drop the last cell as a killed run would leave it: only that cell is recomputed.
  lines = rows_a.splitlines(keepends=True)
  last_cell = json.loads(lines[-1])["cell"]
  kept = [l for l in lines if json.loads(l)["cell"] != last_cell]
  (a / "linear_rf" / "results.jsonl").write_text("".join(kept) + lines[-1][:40])
  res = _rfjax(SMOKE, f"--workdir={a}")
  assert res.returncode == 0
  assert res.stderr.count("done in") == 1 and last_cell in res.stderr
  assert (a / "linear_rf" / "results.jsonl").read_text() == rows_a

  # Another config into the same workdir is refused.
  res = _rfjax(SMOKE, "--config.num_seeds=32", f"--workdir={a}")
  assert res.returncode == 2 and "workdir" in res.stderr
  assert (a / "linear_rf" / "results.jsonl").read_text() == rows_a


def test_sigkill_at_a_random_point_then_rerun_loses_and_repeats_nothing(tmp_path):
  import random
  import signal
  import time

  ref, killed = tmp_path / "ref", tmp_path / "killed"
  assert _rfjax(SMOKE, f"--workdir={ref}").returncode == 0
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen([sys.executable, "-m", "rfjax.main", SMOKE, f"--workdir={killed}"],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  rows_file = killed / "linear_rf" / "results.jsonl"
  # Wait until some cells are written, then kill at a random moment of the rest.
  deadline = time.time() + 120
  while not (rows_file.exists() and rows_file.stat().st_size > 0) and time.time() < deadline:
    time.sleep(0.05)
  time.sleep(random.Random(0).uniform(0.0, 2.0))
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert _rfjax(SMOKE, f"--workdir={killed}").returncode == 0
  want = (ref / "linear_rf" / "results.jsonl").read_text().splitlines()
  got = rows_file.read_text().splitlines()
  keys = [json.loads(line)["key"] for line in got]
  assert len(keys) == len(set(keys))
  assert sorted(got) == sorted(want)


@pytest.mark.slow
def test_sigkill_mid_training_resumes_from_the_orbax_checkpoint(tmp_path):
  import glob
  import signal
  import time

  config = ["--config=" + os.path.join(ROOT, "configs", "polynomial_sgd.py") + ":smoke",
            "--config.widths=(64,)", "--config.steps=400", "--config.checkpoint_every=100"]
  ref, killed = tmp_path / "ref", tmp_path / "killed"
  assert _rfjax(*config, f"--workdir={ref}").returncode == 0
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.Popen([sys.executable, "-m", "rfjax.main", *config, f"--workdir={killed}"],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  saved = os.path.join(killed, "polynomial_sgd", "checkpoints", "*", "u0_*", "[0-9]*")
  deadline = time.time() + 300
  while not [p for p in glob.glob(saved) if p.rsplit("/", 1)[1].isdigit()]:
    assert time.time() < deadline and proc.poll() is None, "no checkpoint was written"
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)               # mid-training: steps 100..400 remain
  proc.wait()
  assert not (killed / "polynomial_sgd" / "results.jsonl").exists() or \
      not (killed / "polynomial_sgd" / "results.jsonl").read_text()
  res = _rfjax(*config, f"--workdir={killed}")
  assert res.returncode == 0, res.stderr[-2000:]
  assert "polynomial_sgd r=64: resuming at step " in res.stderr
  want = (ref / "polynomial_sgd" / "results.jsonl").read_text()
  assert (killed / "polynomial_sgd" / "results.jsonl").read_text() == want
  assert not glob.glob(os.path.join(killed, "polynomial_sgd", "checkpoints", "*"))


ALL_SMOKE = "--config=" + os.path.join(ROOT, "configs", "paper.py") + ":smoke"
# Two small experiments of the paper config (psi_correlation trimmed to d = 2, 3 and linear features).
TWO = ["--only=linear_rf,psi_correlation", "--config.runs.psi_correlation.ds=(2,3)",
       "--config.runs.psi_correlation.mc_features=('linear_sphere',)"]


def test_jobs_run_experiments_in_processes_with_the_same_rows(tmp_path):
  one, two = tmp_path / "one", tmp_path / "two"
  res1 = _rfjax(ALL_SMOKE, *TWO, f"--workdir={one}")
  assert res1.returncode == 0, res1.stderr
  res2 = _rfjax(ALL_SMOKE, *TWO, "--jobs", "2", f"--workdir={two}")
  assert res2.returncode == 0, res2.stderr
  assert "2 experiments, 2 at a time" in res2.stderr
  for name in ("linear_rf", "psi_correlation"):
    assert ((one / name / "results.jsonl").read_text()
            == (two / name / "results.jsonl").read_text())
    s1, s2 = (json.loads((w / name / "summary.json").read_text()) for w in (one, two))
    assert s1["verdict"] == s2["verdict"] and s1["measured"] == s2["measured"]
    assert f"{name}: " in res2.stdout                 # the parent prints every verdict line
  assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
  report = (two / "report.md").read_text()
  assert "[linear_rf]" in report and "[psi_correlation]" in report and "| total |" in report


@pytest.mark.parametrize("args,field", [
    (["--only=nope"], "only"), (["--jobs=0"], "jobs"), (["--jobs=2", "--multihost"], "jobs")])
def test_jobs_and_only_bad_input(tmp_path, args, field):
  workdir = tmp_path / "w"
  res = _rfjax(ALL_SMOKE, *args, f"--workdir={workdir}")
  assert res.returncode == 2, res.stderr
  lines = [l for l in res.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith(f"rfjax: error: {field}:"), res.stderr
  assert not workdir.exists()


def test_child_argv_drops_jobs_and_only_in_every_spelling():
  from rfjax import main
  argv = ["rfjax", "--config=c.py", "--jobs=2", "--only", "a,b", "-jobs", "3", "--only=x",
          "--workdir=w", "--config.runs.x.ds=(2,)"]
  assert main.child_argv(argv) == ["--config=c.py", "--workdir=w", "--config.runs.x.ds=(2,)"]
