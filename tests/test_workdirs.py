"""Workdirs anywhere: the same run into a local directory and into a bucket (an object store
without append, tests/fake_bucket.py) gives the same rows; a run killed between cells, or
between merging the rows and removing the cell objects, resumes without losing or
repeating a row; checkpoints of long cells resume after a kill, and with several processes
are kept only where every process sees them."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections as mlc
import numpy as np
import pytest

import fake_bucket
from rfjax import checkpoints
from rfjax import experiments
from rfjax import results
from rfjax import runner
from rfjax import sweep
from rfjax import verdicts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "workdir_probe"


class Killed(BaseException):
  """Stands for a kill: raised out of a cell, caught by nobody in the runner."""


def _cell_rows(config, cell, key, checkpoint_dir=None, kill_at_step=None):
  """A few steps of x ← x·a + 1 per seed (float64), checkpointed after every step when a
  directory is given; one row per seed with the final x and the first step computed."""
  a = 0.5 + cell["a"]
  x = np.zeros(config.num_seeds)
  start = 0
  if checkpoint_dir is not None:
    ocp, manager = checkpoints.manager(checkpoint_dir)
    if manager.latest_step() is not None:
      start = manager.latest_step()
      x = np.asarray(manager.restore(start, args=ocp.args.StandardRestore(dict(x=x)))["x"])
  noise = sweep.over_seeds(lambda k: jax.random.uniform(k, (), jnp.float64),
                           sweep.seed_keys(key, config.num_seeds))
  for step in range(start, config.steps):
    x = x * a + 1 + np.asarray(noise)
    if checkpoint_dir is not None:
      manager.save(step + 1, args=ocp.args.StandardSave(dict(x=x)))
      if kill_at_step == step + 1:
        manager.close()
        raise Killed(f"killed after step {step + 1}")
  if checkpoint_dir is not None:
    manager.close()
  return [dict(a=cell["a"], seed=s, x=float(x[s]), first_step=start)
          for s in range(config.num_seeds)]


def _summarize(config, rows):
  mean = float(np.mean([r["x"] for r in rows]))
  return dict(claim="probe", prediction="finite", measured=f"mean x {mean:.6g}",
              **verdicts.fields(verdicts.judge(bool(np.isfinite(mean))),
                                would_fail_if="a non-finite mean", departures="a probe"))


def _plot(config, rows, summary):
  fig, ax = plt.subplots()
  ax.plot([r["a"] for r in rows], [r["x"] for r in rows], "o")
  return fig


@pytest.fixture
def probe():
  """Registers the probe experiment; yields a dict whose 'kill' entries make run_cell
  raise Killed: kill['cell'] = a before that cell runs, kill['step'] = n in a cell's
  training after step n."""
  kill = {}

  def run_cell(config, cell, key, checkpoint_dir=None):
    if kill.get("cell") == cell["a"]:
      raise Killed(f"killed before cell a={cell['a']}")
    return _cell_rows(config, cell, key, checkpoint_dir if config.checkpoint else None,
                      kill_at_step=kill.pop("step", None))

  experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
      validate=lambda c: None, cells=lambda c: [dict(a=a) for a in c.alphas],
      run_cell=run_cell, summarize=_summarize, claim="probe", checkpoints=True,
      figure=_plot, row_id_fields=("seed",)))
  try:
    yield kill
  finally:
    experiments.EXPERIMENTS.unregister(NAME)


@pytest.fixture
def bucket(tmp_path):
  fake_bucket.install(str(tmp_path / "bucket-store"))
  fake_bucket.CALLS.clear()
  return "gs://probe-bucket"


def _config(steps=3, checkpoint=False):
  c = mlc.ConfigDict()
  c.experiment, c.seed, c.num_seeds, c.steps, c.checkpoint = NAME, 0, 4, steps, checkpoint
  c.alphas = (0.0, 0.1, 0.2, 0.3)
  return c


def _lines(workdir):
  return results.read_text(results.join(workdir, NAME, "results.jsonl")).splitlines()


def test_bucket_and_local_runs_write_the_same_files(probe, bucket, tmp_path):
  local = str(tmp_path / "local")
  remote = bucket + "/runs/a"
  runner.run_all(_config(), local)
  runner.run_all(_config(), remote)
  assert _lines(remote) == _lines(local) and len(_lines(local)) == 4 * 4
  for name in ("config.json", "summary.json"):
    got = json.loads(results.read_text(results.join(remote, NAME, name)))
    want = json.loads(results.read_text(os.path.join(local, NAME, name)))
    for timing in ("wall_seconds_this_run", "compile_seconds_this_run"):
      got.pop(timing, None), want.pop(timing, None)
    assert got == want
  png = results.as_path(results.join(remote, NAME, f"{NAME}.png")).read_bytes()
  assert png[:8] == b"\x89PNG\r\n\x1a\n"
  assert "workdir_probe" in results.read_text(results.join(remote, "report.md"))
  assert fake_bucket.CALLS["append"] == 0 and fake_bucket.CALLS["rename"] == 0
  # Merged at the end: no cell objects, no checkpoints left in the bucket (objects only:
  # the stand-in's empty local directories are not objects).
  store = tmp_path / "bucket-store" / "probe-bucket" / "runs" / "a" / NAME
  objects = sorted(os.path.relpath(os.path.join(d, f), store)
                   for d, _, files in os.walk(store) for f in files)
  assert objects == ["config.json", "results.jsonl", "summary.json", f"{NAME}.png"]


@pytest.mark.parametrize("where", ["local", "bucket"])
def test_kill_between_cells_then_resume_loses_and_repeats_nothing(probe, bucket, tmp_path,
                                                                   where):
  ref = str(tmp_path / "ref")
  runner.run_all(_config(), ref)
  workdir = str(tmp_path / "killed") if where == "local" else bucket + "/runs/killed"
  probe["cell"] = 0.2                     # two cells written, then the kill
  with pytest.raises(Killed):
    runner.run_all(_config(), workdir)
  path = results.join(workdir, NAME, "results.jsonl")
  assert results.completed_cells(results.load_rows(path)) == {
      f"{NAME}/a=0.0", f"{NAME}/a=0.1"}
  if where == "bucket":                   # one object per finished cell, nothing merged yet
    assert not results.exists(path)
    assert len(list(results.as_path(results.join(workdir, NAME, "cells")).iterdir())) == 2
  probe.clear()
  runner.run_all(_config(), workdir)
  got = _lines(workdir)
  keys = [json.loads(line)["key"] for line in got]
  assert len(keys) == len(set(keys)) == 16
  assert got == _lines(ref)


def test_kill_between_merging_and_removing_cell_objects(probe, bucket, monkeypatch):
  """consolidate writes results.jsonl and is killed before removing the objects: the
  next load counts every cell once, and the rerun computes nothing."""
  workdir = bucket + "/runs/merge"
  real_unlink = type(results.as_path(workdir)).unlink

  def killed_unlink(self, missing_ok=False):
    if f"/{results.CELLS_DIR}/" in os.fspath(self):
      raise Killed("killed while removing cell objects")
    return real_unlink(self, missing_ok=missing_ok)

  monkeypatch.setattr(type(results.as_path(workdir)), "unlink", killed_unlink)
  with pytest.raises(Killed):
    runner.run_all(_config(), workdir)
  monkeypatch.setattr(type(results.as_path(workdir)), "unlink", real_unlink)
  path = results.join(workdir, NAME, "results.jsonl")
  assert len(_lines(workdir)) == 16               # merged, and the objects still there
  assert len(list(results.as_path(results.join(workdir, NAME, "cells")).iterdir())) == 4
  assert len(results.load_rows(path)) == 16
  probe["cell"] = 0.0                             # any recomputation would raise
  runner.run_all(_config(), workdir)
  assert len(_lines(workdir)) == 16
  assert not results.as_path(results.join(workdir, NAME, "cells")).exists() or \
      not list(results.as_path(results.join(workdir, NAME, "cells")).iterdir())


def test_incomplete_cell_object_is_ignored_and_recomputed(bucket):
  """An object that does not hold its cell's rows (not possible with whole-object
  uploads, but read defensively) does not count as a finished cell."""
  path = bucket + "/x/results.jsonl"
  results.append_cell(path, "e/d=1", [dict(seed=0), dict(seed=1)])
  obj = results.cell_object(path, "e/d=1")
  text = obj.read_text().splitlines()
  results.write_atomic(obj, text[0] + "\n")
  assert results.load_rows(path) == []


def test_a_bucket_that_cannot_be_written_is_one_config_error(tmp_path):
  from rfjax.validation import ConfigError
  with pytest.raises(ConfigError, match="workdir.*not writable"):
    runner._check_workdir("s3://no-such-bucket-client/x")   # no s3 filesystem installed


def test_checkpoint_of_a_long_cell_resumes_after_a_kill(probe, tmp_path):
  ref, workdir = str(tmp_path / "ref"), str(tmp_path / "killed")
  runner.run_all(_config(steps=6), ref)          # no checkpoints: one stretch of 6 steps
  probe["step"] = 4                               # the first cell dies after step 4 of 6
  with pytest.raises(Killed):
    runner.run_all(_config(steps=6, checkpoint=True), workdir)
  saved = os.path.join(workdir, NAME, "checkpoints", f"{NAME}_a=0.0")
  assert os.listdir(saved) == ["4"]
  runner.run_all(_config(steps=6, checkpoint=True), workdir)
  rows = results.load_rows(os.path.join(workdir, NAME, "results.jsonl"))
  assert {r["first_step"] for r in rows if r["a"] == 0.0} == {4}       # resumed there
  strip = lambda rs: [{k: v for k, v in r.items() if k != "first_step"} for r in rs]
  assert strip(rows) == strip(results.load_rows(os.path.join(ref, NAME, "results.jsonl")))
  assert not os.listdir(os.path.join(workdir, NAME, "checkpoints"))


def test_checkpoint_directory_with_several_processes(monkeypatch):
  monkeypatch.delenv("RFJAX_SHARED_WORKDIR", raising=False)
  key = "e/d=8/r=64"
  assert checkpoints.cell_dir("/w/e", key, process_count=1) == "/w/e/checkpoints/e_d=8_r=64"
  assert checkpoints.cell_dir("/w/e", key, process_count=4) is None      # each host's disk
  assert checkpoints.cell_dir("gs://b/w/e", key, process_count=4) == \
      "gs://b/w/e/checkpoints/e_d=8_r=64"                                # shared by all
  assert checkpoints.cell_dir("/nfs/w/e", key, process_count=4, shared=True) == \
      "/nfs/w/e/checkpoints/e_d=8_r=64"
  monkeypatch.setenv("RFJAX_SHARED_WORKDIR", "1")
  assert checkpoints.cell_dir("/nfs/w/e", key, process_count=4) == \
      "/nfs/w/e/checkpoints/e_d=8_r=64"


def test_only_process_0_removes_a_spent_checkpoint(tmp_path):
  d = tmp_path / "ckpt"
  d.mkdir()
  (d / "1").write_text("x")
  assert not checkpoints.remove(str(d), process_index=1, process_count=1)
  assert d.exists()
  assert checkpoints.remove(str(d), process_index=0, process_count=1)
  assert not d.exists()


@pytest.mark.slow
def test_sigkill_of_a_real_run_into_a_bucket_then_resume(tmp_path):
  """The command line, SIGKILLed once the first cell's object is in the bucket."""
  store = str(tmp_path / "store")
  smoke = "--config=" + os.path.join(ROOT, "configs", "linear_rf.py") + ":smoke"

  def cmd(workdir):
    code = ("import sys, fake_bucket; fake_bucket.install(sys.argv[1]); "
            "sys.argv = ['rfjax'] + sys.argv[2:]; from rfjax import main; main.entry_point()")
    return [sys.executable, "-c", code, store, smoke, f"--workdir={workdir}"]

  env = dict(os.environ, JAX_PLATFORMS="cpu", RFJAX_CACHE_DIR=str(tmp_path / "cache"),
             PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
  assert subprocess.run(cmd("gs://b/ref"), env=env, capture_output=True).returncode == 0
  proc = subprocess.Popen(cmd("gs://b/killed"), env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  cells = os.path.join(store, "b", "killed", "linear_rf", "cells")
  deadline = time.time() + 300
  while not (os.path.isdir(cells) and os.listdir(cells)):
    assert time.time() < deadline and proc.poll() is None, "no cell was written"
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(os.path.join(store, "b", "killed", "linear_rf", "results.jsonl"))
  res = subprocess.run(cmd("gs://b/killed"), env=env, capture_output=True, text=True)
  assert res.returncode == 0, res.stderr[-2000:]
  read = lambda w: open(os.path.join(store, "b", w, "linear_rf", "results.jsonl")).read()
  got = read("killed").splitlines()
  assert len({json.loads(line)["key"] for line in got}) == len(got)
  assert got == read("ref").splitlines()


def _two_processes(workdir, steps, checkpoint, kill_at, port):
  """Runs tests/multiprocess_probe.py as processes 0 and 1 of one jax.distributed job."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", RFJAX_SHARED_WORKDIR="1",
             PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
  script = os.path.join(ROOT, "tests", "multiprocess_probe.py")
  procs = [subprocess.Popen([sys.executable, script, str(i), "2", str(port), workdir,
                             str(steps), "1" if checkpoint else "0", str(kill_at)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  return [p.returncode for p in procs], outs


@pytest.mark.slow
def test_two_processes_checkpoint_into_the_shared_workdir_and_resume_after_a_kill(tmp_path):
  """jax.distributed on CPU with 2 processes: the cell's state is one array sharded over
  both processes' devices, saved collectively by orbax into the shared workdir; both
  processes die after step 3 of 5; rerun, both resume at step 3, and the rows equal an
  uninterrupted run's (process 0 alone writes them)."""
  import socket
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  ref, killed = str(tmp_path / "ref"), str(tmp_path / "killed")
  codes, outs = _two_processes(ref, 5, False, 0, port)
  assert codes == [0, 0], outs
  codes, outs = _two_processes(killed, 5, True, 3, port + 1)
  assert codes == [17, 17], outs
  saved = os.path.join(killed, "multiprocess_probe", "checkpoints",
                       "multiprocess_probe_a=0.0")
  assert os.listdir(saved) == ["3"]
  codes, outs = _two_processes(killed, 5, True, 0, port + 2)
  assert codes == [0, 0], outs
  assert all("starts [(0.0, 3), (0.1, 0)]" in out for out in outs), outs
  read = lambda w: open(os.path.join(w, "multiprocess_probe", "results.jsonl")).read()
  assert read(killed) == read(ref) and len(read(ref).splitlines()) == 2 * 8
  assert not os.listdir(os.path.join(killed, "multiprocess_probe", "checkpoints"))
