"""scripts/launch_tpu.sh: --dry-run prints every command; bad input exits 2; driven by a
fake `gcloud` on PATH that plays a VM missing, preempted, terminated, unhealthy, ready,
or preempted in the middle of the run, it issues the commands that recover."""
import os
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "launch_tpu.sh")
ARGS = ["--name", "rf-pod", "--zone", "us-central2-b", "--accelerator", "v4-32",
        "--config", "configs/linear_rf.py:smoke"]

# The fake gcloud: logs its arguments, one call per line; `describe` answers from the
# state file ("MISSING" = not found); create makes the VM READY, delete makes it MISSING;
# with FAIL_RUN_AS=<state>, the first `ssh ... --command` that runs rfjax fails and leaves
# the VM in that state (a preemption mid-run).
FAKE_GCLOUD = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_DIR/calls"
state="$(cat "$FAKE_DIR/state")"
case "$*" in
  *" describe "*)
    [[ "$state" == MISSING ]] && { echo "ERROR: NOT_FOUND" >&2; exit 1; }
    printf '%s\t%s\n' "$state" "$(cat "$FAKE_DIR/health" 2>/dev/null)"; exit 0 ;;
  *" create "*) echo READY > "$FAKE_DIR/state"; rm -f "$FAKE_DIR/health" ;;
  *" delete "*) echo MISSING > "$FAKE_DIR/state" ;;
  *"rfjax --multihost"*)
    if [[ -n "${FAIL_RUN_AS:-}" && ! -e "$FAKE_DIR/failed_once" ]]; then
      touch "$FAKE_DIR/failed_once"; echo "$FAIL_RUN_AS" > "$FAKE_DIR/state"; exit 255
    fi ;;
esac
exit 0
"""


def _run(*args, env=None):
  return subprocess.run(["bash", SCRIPT, *args], cwd=ROOT, capture_output=True, text=True,
                        env=env)


@pytest.fixture
def fake_gcloud(tmp_path):
  """fake_gcloud(state, health="", fail_run_as="", *args) -> (result, gcloud calls)."""
  bindir = tmp_path / "bin"
  bindir.mkdir()
  (bindir / "gcloud").write_text(FAKE_GCLOUD)
  (bindir / "gcloud").chmod(0o755)

  def launch(state, *args, health="", fail_run_as=""):
    (tmp_path / "state").write_text(state + "\n")
    if health:
      (tmp_path / "health").write_text(health + "\n")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", FAKE_DIR=str(tmp_path),
               FAIL_RUN_AS=fail_run_as, TMPDIR=str(tmp_path), LAUNCH_TPU_POLL_SECONDS="0",
               LAUNCH_TPU_MAX_POLLS="2")
    res = _run(*ARGS, "--bucket", "gs://rf-bucket", *args, env=env)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() \
        else []
    return res, calls

  return launch


def _verbs(calls):
  """Each gcloud call as its verb: describe, create, delete, scp, ssh-install, ssh-run, cp."""
  out = []
  for c in calls:
    words = c.split()
    if words[:2] == ["storage", "cp"]:
      out.append("storage-cp")
    elif words[3] == "ssh":
      out.append("ssh-run" if "rfjax --multihost" in c else "ssh-install")
    else:
      out.append(words[3])
  return out


def test_vm_missing_is_created_with_spot(fake_gcloud):
  res, calls = fake_gcloud("MISSING", "--spot")
  assert res.returncode == 0, res.stderr
  assert _verbs(calls) == ["describe", "create", "scp", "ssh-install", "ssh-run",
                           "storage-cp"]
  create = calls[1]
  assert "create rf-pod" in create and "--spot" in create
  assert "--accelerator-type=v4-32" in create and "--zone=us-central2-b" in create
  run = calls[4]
  assert "--workdir=gs://rf-bucket/rfjax/rf-pod/linear_rf_smoke" in run
  assert "--compilation_cache_dir=gs://rf-bucket/rfjax/jax_cache" in run
  assert calls[5].startswith("storage cp --recursive gs://rf-bucket/rfjax/rf-pod/linear_rf_smoke")


@pytest.mark.parametrize("state,health", [("PREEMPTED", ""), ("TERMINATED", ""),
                                          ("STOPPED", ""), ("READY", "UNHEALTHY_MAINTENANCE")])
def test_vm_preempted_terminated_or_unhealthy_is_deleted_and_recreated(fake_gcloud, state,
                                                                       health):
  res, calls = fake_gcloud(state, "--preemptible", health=health)
  assert res.returncode == 0, res.stderr
  assert _verbs(calls) == ["describe", "delete", "create", "scp", "ssh-install", "ssh-run",
                           "storage-cp"]
  assert "delete rf-pod" in calls[1] and "--quiet" in calls[1]
  assert "--preemptible" in calls[2] and "--spot" not in calls[2]


def test_vm_ready_is_used_as_it_is(fake_gcloud):
  res, calls = fake_gcloud("READY", health="HEALTHY")
  assert res.returncode == 0, res.stderr
  assert _verbs(calls) == ["describe", "scp", "ssh-install", "ssh-run", "storage-cp"]


def test_vm_creating_is_waited_for_then_recreated_if_it_never_gets_ready(fake_gcloud):
  res, calls = fake_gcloud("CREATING")
  assert res.returncode == 0, res.stderr
  assert _verbs(calls)[:5] == ["describe", "describe", "describe", "delete", "create"]


def test_preempted_mid_run_is_recovered_with_retries(fake_gcloud):
  res, calls = fake_gcloud("READY", "--retries", "2", fail_run_as="PREEMPTED")
  assert res.returncode == 0, res.stderr
  assert _verbs(calls) == ["describe", "scp", "ssh-install", "ssh-run",      # preempted
                           "describe",                                      # seen so
                           "describe", "delete", "create", "scp", "ssh-install", "ssh-run",
                           "storage-cp"]
  runs = [c for c in calls if "rfjax --multihost" in c]
  assert runs[0] == runs[1]                       # the same command: it resumes


def test_preempted_mid_run_without_retries_exits_with_the_run_status(fake_gcloud):
  res, calls = fake_gcloud("READY", fail_run_as="PREEMPTED")
  assert res.returncode == 255
  assert "relaunch the same command" in res.stderr
  assert "create" not in _verbs(calls)


def test_a_run_that_fails_on_a_ready_vm_is_not_retried(fake_gcloud):
  res, calls = fake_gcloud("READY", "--retries", "3", fail_run_as="READY")
  assert res.returncode == 255 and "not a preemption" in res.stderr
  assert _verbs(calls).count("ssh-run") == 1


def test_dry_run_prints_every_command_including_spot_and_each_branch():
  res = _run(*ARGS, "--bucket", "gs://rf-bucket", "--spot", "--dry-run",
             "--", "--config.num_seeds=64")
  assert res.returncode == 0, res.stderr
  lines = [l for l in res.stdout.splitlines() if not l.startswith("#")]
  assert lines[0].startswith("gcloud compute tpus tpu-vm describe rf-pod")
  creates = [l for l in lines if " create rf-pod" in l]
  assert len(creates) == 2 and all("--spot" in l for l in creates)
  assert any(" delete rf-pod" in l and "--quiet" in l for l in lines)
  ssh = [l for l in lines if " ssh rf-pod --worker=all" in l]
  assert len(ssh) == 2                                # install, then run
  run = shlex.split(ssh[1])[-1]
  assert "--multihost" in run and "linear_rf.py:smoke" in run
  assert "--config.num_seeds=64" in run and "--workdir=gs://rf-bucket/" in run
  assert any(l.startswith("gcloud storage cp --recursive gs://rf-bucket/") for l in lines)


def test_local_workdir_still_works_with_a_warning():
  res = _run(*ARGS, "--workdir", "runs/x", "--dry-run")
  assert res.returncode == 0, res.stderr
  assert "a preempted VM loses it" in res.stderr
  assert any("scp" in l and "--worker=0" in l for l in res.stdout.splitlines())


@pytest.mark.parametrize("args,message", [
    (["--zone", "z", "--accelerator", "v4-8", "--config", "configs/paper.py",
      "--bucket", "gs://b"], "--name"),
    (["--name", "n", "--zone", "z", "--accelerator", "v4-8", "--config", "configs/nope.py",
      "--bucket", "gs://b"], "no such file"),
    (ARGS, "--bucket"),                                          # no bucket, no workdir
    (ARGS + ["--bucket", "my-bucket"], "gs://"),
    (ARGS + ["--bucket", "gs://b", "--spot", "--preemptible"], "exclude each other"),
    (ARGS + ["--workdir", "/abs/path"], "relative"),
    (ARGS + ["--bucket", "gs://b", "--retries", "x"], "--retries"),
])
def test_missing_or_bad_arguments_exit_2(args, message):
  res = _run(*args, "--dry-run")
  assert res.returncode == 2 and message in res.stderr, res.stderr


def test_help_is_the_header_comment():
  res = _run("--help")
  assert res.returncode == 0
  assert res.stdout.startswith("Runs an rfjax config on every worker")
  assert res.stdout.rstrip().endswith("Extra arguments after `--` go to rfjax.")
