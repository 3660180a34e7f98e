"""rfjax command line: run one experiment, or all of them, into a workdir.

  rfjax --config=configs/linear_rf.py --workdir=runs/linear_rf
  rfjax --config=configs/paper.py --workdir=runs/paper [--jobs=2] [--only=linear_rf,neuron_gd]
  rfjax --config=configs/linear_rf.py:smoke --config.ds='(8, 16)' --workdir=/tmp/x

  rfjax --config=configs/paper.py --workdir=gs://bucket/runs/paper   (pip install rfjax[cloud])

The workdir is a local directory or a bucket URI (rfjax.results). JAX's persistent
compilation cache is on by default, in $RFJAX_CACHE_DIR or the user cache directory
(~/.cache/rfjax/jax_compilation_cache), so a rerun does not recompile what an earlier run
compiled; --compilation_cache_dir moves it (a bucket URI works too), --nocompilation_cache
turns it off.

--jobs=N runs the experiments of a multi-experiment config N at a time, each in its own
process (XLA compiles on one thread, and several experiments' solvers run on one BLAS thread,
so two at once use two cores better than one); rows, summaries and verdicts are the same.

Runs are quiet: one progress line per cell with the experiment's ETA; the INFO logs of
libraries (orbax's per-save lines) are hidden unless --verbosity=1 (or higher) asks for them.

Bad input (unknown names, non-positive sizes, non-numeric overrides, an unwritable
workdir) stops before any work with one line naming the field, and exit status 2.
"""
from __future__ import annotations

import json
import logging as std_logging
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("MPLBACKEND", "Agg")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import jax  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from rfjax.validation import ConfigError  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/linear_rf.py[:smoke].",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for results, figures, report: a local path or a bucket URI "
    "(gs://bucket/dir; needs the cloud extra).")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Call jax.distributed.initialize() first (TPU pods, multi-host GPU).")

_JOBS = flags.DEFINE_integer(
    "jobs", 1, "Experiments of a multi-experiment config (configs/paper.py) to run at once, "
    "each in its own process (the same command line with --only=<experiment>); rows and "
    "verdicts do not depend on it.")
_ONLY = flags.DEFINE_list(
    "only", [], "Run only these experiments of a multi-experiment config (comma-separated "
    "names of its runs); the report still covers every experiment in the workdir.")
_CACHE = flags.DEFINE_bool(
    "compilation_cache", True, "Use JAX's persistent compilation cache (--nocompilation_cache: "
    "off).")
_CACHE_DIR = flags.DEFINE_string(
    "compilation_cache_dir", "", "Directory of the compilation cache (a local path or a "
    "bucket URI); default $RFJAX_CACHE_DIR, else the user cache directory.")
_CACHE_MIN_SECS = flags.DEFINE_float(
    "compilation_cache_min_compile_secs", 0.0,
    "Cache only programs whose compilation took at least this long (seconds).")

USAGE_EXIT = 2
# Packages whose INFO logs are shown only with --verbosity >= 1.
QUIET_PACKAGES = ("orbax",)


class _QuietLibraries(std_logging.Filter):
  """Drops INFO (and DEBUG) records logged from QUIET_PACKAGES at verbosity 0."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    if record.levelno > std_logging.INFO or logging.get_verbosity() >= 1:
      return True
    path = record.pathname.replace(os.sep, "/")
    return not any(f"/{p}/" in path for p in QUIET_PACKAGES)


def default_cache_dir() -> str:
  """$RFJAX_CACHE_DIR, else $XDG_CACHE_HOME/rfjax/jax_compilation_cache (~/.cache if unset)."""
  if os.environ.get("RFJAX_CACHE_DIR"):
    return os.environ["RFJAX_CACHE_DIR"]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "rfjax", "jax_compilation_cache")


def configure_compilation_cache(enabled: bool, directory: str = "",
                                min_compile_secs: float = 0.0) -> str | None:
  """Turns JAX's persistent compilation cache on in `directory` (default_cache_dir() if
  empty) or off; returns the directory in use, or None. Call before anything compiles."""
  if not enabled:
    jax.config.update("jax_enable_compilation_cache", False)
    jax.config.update("jax_compilation_cache_dir", None)
    return None
  directory = directory or default_cache_dir()
  if "://" not in directory:
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_enable_compilation_cache", True)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_secs))
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return directory


def _fail(message: str) -> None:
  print(f"rfjax: error: {message}", file=sys.stderr)
  sys.exit(USAGE_EXIT)


def _one_line(e: BaseException) -> str:
  text = " ".join(str(e).split())
  return text if len(text) < 400 else text[:397] + "..."


def _config_error(e: BaseException) -> str:
  """One line for a config file that failed to load or an override that failed."""
  if isinstance(e, (KeyError, AttributeError)):
    name = str(e).strip("\"'").split("'")[0]
    return f"config.{name}: no such field (overrides must name existing fields)"
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  if any("No such file" in l for l in lines):
    path = _CONFIG_ARG[0] if _CONFIG_ARG else "?"
    return f"config: file not found: {path}"
  if lines and "Traceback" in str(e):
    return f"config: {lines[-1]}"     # the config file's own error message
  return f"config: {_one_line(e)}"


_CONFIG_ARG: list[str] = []


def _parse(argv: Sequence[str]) -> list[str]:
  """absl flag parsing that reports any error in one line, exit status 2."""
  _CONFIG_ARG[:] = [a.split("=", 1)[1].split(":")[0] for a in argv
                    if a.startswith("--config=")]
  try:
    rest = flags.FLAGS(argv)
    config = _CONFIG.value
    if config is not None:
      config.keys()               # a config file that failed to load raises here
  except flags.Error as e:
    msg = _one_line(e)
    _fail(_config_error(e) if "Traceback" in str(e) else msg)
  except Exception as e:  # noqa: BLE001 - any failure to build the config is bad input.
    _fail(_config_error(e))
  if len(rest) > 1:
    _fail(f"unexpected arguments: {' '.join(rest[1:])}")
  if config is None:
    _fail("config: is required (--config=configs/<experiment>.py[:variant])")
  return rest


def main(argv: Sequence[str]) -> None:
  del argv
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if _JOBS.value < 1:
    _fail(f"jobs: must be a positive integer, got {_JOBS.value}")
  if _JOBS.value > 1 and _MULTIHOST.value:
    _fail("jobs: must be 1 with --multihost (every process takes part in every experiment)")
  if _MULTIHOST.value:
    jax.distributed.initialize()
  jax.config.update("jax_enable_x64", True)   # exact mode; training data stays float32.
  try:
    cache = configure_compilation_cache(_CACHE.value, _CACHE_DIR.value, _CACHE_MIN_SECS.value)
  except OSError as e:
    _fail(f"compilation_cache_dir: cannot be created: {_one_line(e)}")
  _die_with_parent()
  from rfjax import runner  # imports every experiment and fills the registries
  config = _CONFIG.value
  only = [n for n in _ONLY.value if n] or None
  try:
    pairs = runner.check(config, _WORKDIR.value, only)
  except ConfigError as e:
    _fail(_one_line(e))
  selected = [name for name, _ in pairs]
  logging.info("process %d of %d, %d devices (%s)", jax.process_index(),
               jax.process_count(), jax.device_count(), jax.default_backend())
  logging.info("compilation cache: %s", cache or "off")
  logging.info("config:\n%s", config)
  if _JOBS.value > 1 and len(selected) > 1:
    experiment_of = {name: sub.experiment for name, sub in pairs}
    summaries = _run_in_processes(selected, _JOBS.value, _WORKDIR.value, experiment_of)
    runner.write_report(_WORKDIR.value)
  else:
    summaries = runner.run_all(config, _WORKDIR.value, only=only)
  if jax.process_index() != 0:
    return
  for name, summary in summaries.items():
    verdict = runner.verdict_of(summary)
    verdict = "FAILS" if verdict == "fails" else verdict
    print(f"{name}: {verdict} — {summary['measured']}")
  print(f"report: {os.path.join(_WORKDIR.value, 'report.md')}")


_PARENT_ENV = "RFJAX_JOB_PARENT"


def _die_with_parent() -> None:
  """In a --jobs child: ends this process when the parent dies (Linux), so that a killed run
  leaves no orphan writing rows that its resume would compute again."""
  parent = os.environ.pop(_PARENT_ENV, "")
  if not parent or not sys.platform.startswith("linux"):
    return
  import ctypes  # pylint: disable=import-outside-toplevel
  import signal  # pylint: disable=import-outside-toplevel
  pr_set_pdeathsig = 1
  ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
  if os.getppid() != int(parent):           # the parent died before prctl took effect
    sys.exit(1)


def child_argv(argv: Sequence[str]) -> list[str]:
  """argv[1:] without --jobs and --only (any spelling absl accepts)."""
  out, skip = [], False
  for arg in argv[1:]:
    if skip:
      skip = False
      continue
    name = arg.lstrip("-").split("=", 1)[0]
    if arg.startswith("-") and name in ("jobs", "only", "nojobs", "noonly"):
      skip = "=" not in arg and name in ("jobs", "only")
      continue
    out.append(arg)
  return out


def _run_in_processes(names: Sequence[str], jobs: int, workdir: str,
                      experiment_of: dict[str, str]) -> dict[str, dict]:
  """Runs each experiment in `names` as `rfjax <this command line> --only=<name>`, at most
  `jobs` at once, in the config's order; returns their summaries (read back from the workdir).
  Their logs go to this process's stderr; a failed one stops nothing else, and ends this
  process with exit status 1 once the others are done."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  from rfjax import results  # pylint: disable=import-outside-toplevel
  base = [sys.executable, "-m", "rfjax.main", *child_argv(sys.argv)]
  env = dict(os.environ, **{_PARENT_ENV: str(os.getpid())})
  logging.info("running %d experiments, %d at a time, each in its own process",
               len(names), jobs)
  pending, running, failed = list(names), {}, []
  try:
    while pending or running:
      while pending and len(running) < jobs:
        name = pending.pop(0)
        running[name] = subprocess.Popen([*base, f"--only={name}", "--jobs=1"], env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
      time.sleep(0.2)
      for name, proc in list(running.items()):
        if proc.poll() is not None:
          del running[name]
          if proc.returncode != 0:
            failed.append(f"{name} (exit status {proc.returncode})")
  finally:
    for proc in running.values():             # interrupted: stop the rest
      proc.terminate()
  if failed:
    print(f"rfjax: error: failed: {', '.join(failed)}; their logs are above. Rerun the same "
          "command to resume.", file=sys.stderr)
    sys.exit(1)
  return {experiment_of[n]: json.loads(results.read_text(
      results.join(workdir, experiment_of[n], "summary.json"))) for n in names}


def entry_point() -> None:
  jax.config.config_with_absl()
  app.run(main, flags_parser=_parse)


if __name__ == "__main__":
  entry_point()
