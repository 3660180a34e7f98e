"""scripts/launch_tpu.sh: --dry-run prints the gcloud commands; bad input exits 2."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "launch_tpu.sh")


def _run(*args):
  return subprocess.run(["bash", SCRIPT, *args], cwd=ROOT, capture_output=True, text=True)


def test_dry_run_prints_every_step_for_all_workers():
  res = _run("--name", "rf-pod", "--zone", "us-central2-b", "--accelerator", "v4-32",
             "--config", "configs/linear_rf.py:smoke", "--workdir", "runs/x", "--dry-run",
             "--", "--config.num_seeds=64")
  assert res.returncode == 0, res.stderr
  lines = [l for l in res.stdout.splitlines() if not l.startswith("#")]
  assert lines[0].startswith("gcloud compute tpus tpu-vm create rf-pod")
  assert "--accelerator-type=v4-32" in lines[0]
  ssh = [l for l in lines if " ssh rf-pod --worker=all" in l]
  assert len(ssh) == 2                                # install, then run
  assert "--multihost" in ssh[1] and "linear_rf.py:smoke" in ssh[1]
  assert "--config.num_seeds=64" in ssh[1]
  assert any("scp" in l and "--worker=0" in l for l in lines)


def test_missing_or_bad_arguments_exit_2():
  res = _run("--zone", "z", "--accelerator", "v4-8", "--config", "configs/paper.py",
             "--workdir", "runs/x", "--dry-run")
  assert res.returncode == 2 and "--name" in res.stderr
  res = _run("--name", "n", "--zone", "z", "--accelerator", "v4-8", "--config",
             "configs/nope.py", "--workdir", "runs/x", "--dry-run")
  assert res.returncode == 2 and "no such file" in res.stderr
