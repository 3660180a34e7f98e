"""Runs experiments into a workdir: rows, summary, figure, report; resumes by cell.

Layout: `<workdir>/<experiment>/{config.json, results.jsonl, summary.json,
<experiment>.png}` and `<workdir>/report.md`. Rows are appended per grid cell; a
rerun with the same config computes only the cells that are missing. A rerun with
a different config into the same workdir is refused.

Numerical safety: a cell whose rows hold a non-finite number (a fit or a training run
that overflowed) is stopped there: instead of its rows, one error row is written that
names the cell and the quantities that went non-finite, and the sweep goes on. Error
rows never reach `summarize` or the figure; summary.json counts them (`failed_cells`,
`failed`), and a claim with failed cells is "inconclusive" (never "holds"), with the
reason in `verdict_reasons`. On resume an
error cell counts as done, like any written cell: a run is deterministic in (config,
seed), so recomputing it would fail the same way. To retry such cells (say, after a
code fix), delete their lines (those with a "failure" field) from results.jsonl.

Verdicts: every summary carries `verdict` ∈ {holds, fails, inconclusive} with `holds` =
(verdict == "holds"), `would_fail_if` and `departures` (rfjax.verdicts); a summarize()
that returns none is an error (`check_verdict`). The report and the figure title show it.

Checkpoints: an experiment registered with `checkpoints=True` gets a directory
`<experiment>/checkpoints/<cell>/` in which it saves a long computation (orbax) and from
which a rerun continues it; the runner removes it once the cell's rows are written
(rfjax.checkpoints: with several processes only in a workdir they all share, a bucket).

Workdirs anywhere: every file goes through rfjax.results' paths (etils.epath), so the
workdir can be a local directory or a bucket (`gs://bucket/dir`) with the same resume
guarantees (rows one object per cell there; see rfjax.results).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections as mlc
import numpy as np
from absl import logging

from rfjax import checkpoints
from rfjax import experiments
from rfjax import plots
from rfjax import profiling
from rfjax import results
from rfjax import verdicts
from rfjax.validation import ConfigError


def experiment_configs(config: mlc.ConfigDict) -> list[tuple[str, mlc.ConfigDict]]:
  """(name, config) pairs: one for a single-experiment config, several for `runs`."""
  if "runs" in config:
    order = list(config.get("order", ())) or list(config.runs)   # ConfigDict keys are sorted
    missing = [n for n in order if n not in config.runs]
    if missing:
      raise ConfigError("config.order", f"names runs that do not exist: {', '.join(missing)}")
    return [(name, config.runs[name]) for name in order]
  return [(config.experiment, config)]


def _config_text(config: mlc.ConfigDict) -> str:
  return json.dumps(results.to_json(config.to_dict()), sort_keys=True, indent=1)


def check(config: mlc.ConfigDict, workdir: str, only: Sequence[str] | None = None
          ) -> list[tuple[str, mlc.ConfigDict]]:
  """Validates everything before any work; raises ConfigError naming the field. Returns the
  (name, config) pairs to run: all of them, or those of the runs named in `only`."""
  pairs = experiment_configs(config)
  if not pairs:
    raise ConfigError("config.runs", "names no experiment")
  if only is not None:
    unknown = sorted(set(only) - {name for name, _ in pairs})
    if unknown:
      raise ConfigError("only", f"not in the config: {', '.join(unknown)}; allowed: "
                        f"{', '.join(name for name, _ in pairs)}")
  for name, sub in pairs:
    if "experiment" not in sub or sub.experiment not in experiments.names():
      got = sub.get("experiment", name)
      raise ConfigError("config.experiment",
                        f"unknown {got!r}; allowed: {', '.join(experiments.names())}")
    try:
      experiments.get(sub.experiment).validate(sub)
    except ConfigError as e:
      prefix = "config." if "runs" not in config else f"config.runs.{name}."
      raise ConfigError(prefix + e.field, str(e).split(": ", 1)[1]) from None
  _check_workdir(workdir)
  for name, sub in pairs:
    saved = results.join(workdir, sub.experiment, "config.json")
    if results.exists(saved) and results.read_text(saved) != _config_text(sub):
      raise ConfigError("workdir", f"{saved} holds results of a different config; "
                        "rerun with the same config or use a new --workdir")
  return [(name, sub) for name, sub in pairs if only is None or name in only]


def _check_workdir(workdir: str) -> None:
  if not workdir:
    raise ConfigError("workdir", "is required (--workdir=DIR)")
  if results.is_remote(workdir):
    _check_remote_workdir(workdir)
    return
  path = os.path.abspath(workdir)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  if not os.path.isdir(path):
    raise ConfigError("workdir", f"{path} exists and is not a directory")
  try:  # os.access is not enough (root, read-only mounts, /proc): try a real file.
    fd, probe = tempfile.mkstemp(dir=path, prefix=".rfjax-probe-")
    os.close(fd)
    os.unlink(probe)
  except OSError:
    raise ConfigError("workdir", f"{path} is not writable") from None


def _check_remote_workdir(workdir: str) -> None:
  """Writes, reads back and removes one probe object under `workdir`."""
  probe = results.join(workdir, f".rfjax-probe-{uuid.uuid4().hex}")
  try:
    results.write_atomic(probe, "probe")
    ok = results.read_text(probe) == "probe"
    results.as_path(probe).unlink(missing_ok=True)
  except Exception as e:  # noqa: BLE001 - no client library, no credentials, no bucket.
    hint = (" (install the cloud extra: pip install 'rfjax[cloud]')"
            if isinstance(e, (ImportError, ValueError)) else "")
    raise ConfigError("workdir", f"{workdir} is not writable: {type(e).__name__}: "
                      f"{' '.join(str(e).split())[:200]}{hint}") from None
  if not ok:
    raise ConfigError("workdir", f"{workdir} did not read back what was written")


def run_experiment(config: mlc.ConfigDict, workdir: str) -> dict:
  """Runs (or resumes) one experiment into `<workdir>/<experiment>/`; returns its summary."""
  name = config.experiment
  exp = experiments.get(name)
  outdir = results.join(workdir, name)
  path = results.join(outdir, "results.jsonl")
  is_writer = jax.process_index() == 0       # every process computes, process 0 writes
  rows: list[dict] = []
  if is_writer:
    results.makedirs(outdir)
    results.write_atomic(results.join(outdir, "config.json"), _config_text(config))
    rows = results.load_rows(path)
  grid = exp.cells(config)
  done = _agree_on_done(grid, name, results.completed_cells(rows))
  root = jax.random.key(config.seed)
  t_start, computed = time.time(), 0
  c_start = profiling.compile_seconds()
  for i, cell in enumerate(grid):
    key = results.cell_key(name, cell)
    if key in done:
      continue
    t0, c0 = time.time(), profiling.compile_seconds()
    cell_root = experiments.cell_prng_key(root, name, cell)
    ckpt = checkpoints.cell_dir(outdir, key) if exp.checkpoints else None
    if ckpt:
      cell_rows = exp.run_cell(config, cell, cell_root, checkpoint_dir=ckpt)
    else:
      cell_rows = exp.run_cell(config, cell, cell_root)
    bad = nonfinite_fields(cell_rows)
    if bad:
      cell_rows = [error_row(key, cell, cell_rows, bad, exp.row_id_fields)]
      logging.warning("%s", cell_rows[0]["failure"])
    for row, row_key in zip(cell_rows, row_keys(key, cell, cell_rows, exp.row_id_fields)):
      row["key"] = row_key
    if is_writer:
      rows.extend(results.append_cell(path, key, cell_rows))
    if ckpt:                                 # the rows are safe: the checkpoint is spent
      checkpoints.remove(ckpt)
    computed += 1
    logging.info("%s", progress_line(name, i + 1, len(grid), key, time.time() - t0,
                                     time.time() - t_start, computed, len(grid) - len(done),
                                     compile_s=profiling.compile_seconds() - c0))
  if not is_writer:       # the other processes took part in every cell's computation
    return dict(experiment=name, holds=None, verdict=None, measured="written by process 0")
  order = {results.cell_key(name, c): i for i, c in enumerate(grid)}
  rows = sorted(rows, key=lambda r: order.get(r["cell"], len(order)))
  results.consolidate(path, rows)            # an object store's cell objects, merged
  rows = [r for r in rows if r["cell"] in order]
  failed = [dict(cell=r["cell"], failure=r["failure"]) for r in rows if "failure" in r]
  rows = [r for r in rows if "failure" not in r]
  figure = results.join(outdir, f"{name}.png")
  summary = dict(experiment=name)
  if rows:
    try:
      summary.update(check_verdict(name, exp.summarize(config, rows)))
    except Exception as e:  # noqa: BLE001 - only when cells are missing; see below.
      if not failed:
        raise
      summary.update(claim=exp.claim, measured=f"no summary: {type(e).__name__}: {e}")
  else:
    summary.update(claim=exp.claim, measured="no summary: every cell failed")
  if failed:
    summary["measured"] = (f"{len(failed)} of {len(grid)} cells failed (non-finite values; "
                           f"see 'failed'); {summary.get('measured', '')}")
    summary.update(_inconclusive_for_failed(summary, len(failed), len(grid)))
  summary["failed_cells"] = len(failed)
  summary["failed"] = failed
  summary["wall_seconds_this_run"] = round(time.time() - t_start, 2)
  # JAX compile time (tracing, lowering, XLA or the compilation cache) within that wall time.
  summary["compile_seconds_this_run"] = round(profiling.compile_seconds() - c_start, 2)
  results.write_atomic(results.join(outdir, "summary.json"),
                       json.dumps(results.to_json(summary), indent=1, sort_keys=True))
  try:
    if not rows:
      raise ValueError("no rows to draw")
    _save_figure(name, config, rows, summary, figure)
  except Exception:  # noqa: BLE001 - a figure of a partial grid may not be drawable.
    if not failed:
      raise
    logging.warning("%s: no figure (%d failed cells)", name, len(failed))
    results.as_path(figure).unlink(missing_ok=True)   # never leave a figure of other rows
  return summary


def progress_line(name: str, index: int, total: int, key: str, cell_s: float, elapsed_s: float,
                  computed: int, to_compute: int, compile_s: float | None = None) -> str:
  """'<experiment> [index/total] <cell> done in 3.2s (compile 1.1s), elapsed 5s, ETA 1m05s'
  (the ETA from the mean time of the cells computed in this run, times the cells left to
  compute; the compile part only when `compile_s` is given)."""
  left = max(to_compute - computed, 0)
  eta = elapsed_s / max(computed, 1) * left
  compiled = "" if compile_s is None else f" (compile {compile_s:.1f}s)"
  return (f"{name} [{index}/{total}] {key} done in {cell_s:.1f}s{compiled}, "
          f"elapsed {_duration(elapsed_s)}, ETA {_duration(eta)}")


def _duration(seconds: float) -> str:
  m, s = divmod(int(round(seconds)), 60)
  return f"{m}m{s:02d}s" if m else f"{s}s"


def _save_figure(name: str, config: mlc.ConfigDict, rows: list[dict], summary: dict,
                 figure: str) -> None:
  """plots.save into the workdir: directly on a local disk, else drawn locally and written
  as one object."""
  if not results.is_remote(figure):
    plots.save(name, config, rows, summary, figure)
    return
  with tempfile.TemporaryDirectory(prefix="rfjax-figure-") as tmp:
    local = os.path.join(tmp, f"{name}.png")
    plots.save(name, config, rows, summary, local)
    with open(local, "rb") as f:
      results.write_atomic(figure, f.read())


def check_verdict(name: str, summary: dict[str, Any]) -> dict[str, Any]:
  """`summary` itself; ValueError naming the experiment unless it carries a valid verdict
  with holds == (verdict == "holds"), a non-empty would_fail_if and a departures text
  (empty only where the run is in the theorem's regime)."""
  if "verdict" not in summary:
    raise ValueError(f"{name}: summarize() returned no 'verdict'; build its verdict fields "
                     "with rfjax.verdicts.fields(verdict, would_fail_if=..., departures=...)")
  verdicts.check(summary["verdict"])
  if summary.get("holds") is not (summary["verdict"] == "holds"):
    raise ValueError(f"{name}: summary holds={summary.get('holds')!r} disagrees with "
                     f"verdict={summary['verdict']!r}")
  if not isinstance(summary.get("would_fail_if"), str) or not summary["would_fail_if"]:
    raise ValueError(f"{name}: summary 'would_fail_if' must be a non-empty text")
  if not isinstance(summary.get("departures"), str):
    raise ValueError(f"{name}: summary 'departures' must be a text")
  return summary


def _inconclusive_for_failed(summary: dict[str, Any], num_failed: int,
                             num_cells: int) -> dict[str, Any]:
  """The verdict fields of a run with failed cells: inconclusive, whatever the rest gives."""
  reasons = [f"{num_failed} of {num_cells} cells failed (non-finite values), so the claim "
             "was not measured on the whole grid"]
  if "verdict" in summary:
    reasons.append(f"the remaining cells alone give {summary['verdict']!r}")
    reasons += [f"(remaining cells) {r}" for r in summary.get("verdict_reasons", ())]
  return verdicts.fields(
      "inconclusive", reasons=reasons,
      would_fail_if=summary.get("would_fail_if") or "not judged: no summary of the cells",
      departures=summary.get("departures") or "not judged: no summary of the cells")


def nonfinite_fields(rows: Sequence[dict]) -> list[tuple[str, dict]]:
  """(field, row) for the first row in which each field holds a NaN or an infinity."""
  found: dict[str, dict] = {}

  def finite(value: Any) -> bool:
    value = results.to_json(value)
    if isinstance(value, str):
      return value not in ("nan", "inf", "-inf")
    if isinstance(value, float):
      return math.isfinite(value)
    if isinstance(value, list):
      return all(finite(v) for v in value)
    if isinstance(value, dict):
      return all(finite(v) for v in value.values())
    return True

  for row in rows:
    for field, value in row.items():
      if field not in found and not finite(value):
        found[field] = row
  return list(found.items())


def error_row(cell_key: str, cell: dict, rows: Sequence[dict],
              bad: Sequence[tuple[str, dict]], fields: Sequence[str] = ()) -> dict:
  """The one row a failed cell writes: the cell, the non-finite fields, where they were (the
  row each was first seen in, named by the experiment's row-id `fields`)."""
  where = []
  for field, row in bad:
    ids = ", ".join(f"{f}={results.to_json(row[f])}" for f in fields
                    if f in row and f not in cell)
    where.append(f"{field} = {results.to_json(row[field])}" + (f" ({ids})" if ids else ""))
  return dict(cell, failure=f"{cell_key}: non-finite " + "; ".join(where),
              nonfinite=[field for field, _ in bad], rows_dropped=len(rows))


def row_keys(cell_key: str, cell: dict, rows: Sequence[dict],
             fields: Sequence[str]) -> list[str]:
  """Unique, stable keys for one cell's rows: the cell plus the row-id `fields` (an
  experiment's `row_id_fields`) that the rows hold and the cell does not, in that order."""
  keys = [cell_key + "".join(f"/{f}={results.to_json(row[f])}" for f in fields
                             if f in row and f not in cell) for row in rows]
  if len(set(keys)) < len(keys):               # fall back to the row's position in the cell
    keys = [f"{k}/row={i}" for i, k in enumerate(keys)]
  return keys


def _agree_on_done(grid: Sequence[dict], name: str, done: set[str]) -> set[str]:
  """The finished cells as process 0 sees them, so every process skips the same cells."""
  if jax.process_count() == 1:
    return done
  from jax.experimental import multihost_utils
  mask = np.array([results.cell_key(name, c) in done for c in grid], np.int32)
  mask = np.asarray(multihost_utils.broadcast_one_to_all(mask))
  return {results.cell_key(name, c) for c, m in zip(grid, mask) if m}


def write_report(workdir: str, names: Sequence[str] | None = None) -> str:
  """Writes `<workdir>/report.md` from every summary.json under it; returns its path."""
  names = sorted(p.name for p in results.as_path(workdir).iterdir()
                 if results.exists(results.join(workdir, p.name, "summary.json"))) \
      if names is None else list(names)
  lines = ["# rfjax report", "",
           "| experiment | verdict | measured |", "|---|---|---|"]
  blocks, summaries = [], []
  for name in names:
    s = json.loads(results.read_text(results.join(workdir, name, "summary.json")))
    summaries.append(s)
    verdict = verdict_of(s)
    shown = {"holds": "holds", "fails": "**FAILS**"}.get(verdict, "inconclusive")
    lines.append(f"| [{name}](#{name}) | {shown} | {s.get('measured', '')} |")
    blocks += [f"## {name}", "", s.get("claim", ""), "",
               f"- verdict: **{verdict}**",
               f"- prediction: {s.get('prediction', '')}",
               f"- measured: {s.get('measured', '')}",
               f"- would fail if: {s.get('would_fail_if', '(not recorded)')}",
               f"- departures from the theorem's regime: {s.get('departures', '(not recorded)')}"]
    blocks += [f"- reason: {r}" for r in s.get("verdict_reasons", ())]
    blocks += ["", f"![{name}]({name}/{name}.png)", ""]
  blocks += time_table(summaries)
  path = results.join(workdir, "report.md")
  results.write_atomic(path, "\n".join(lines + [""] + blocks))
  return path


def time_table(summaries: Sequence[dict[str, Any]]) -> list[str]:
  """Markdown lines: each experiment's wall time in the run that wrote its summary, split into
  JAX compile time and the rest (computation, Python, I/O), and the totals."""
  lines = ["## Time", "", "Wall seconds of the run that wrote each summary (a resumed run "
           "counts only the cells it computed); *compile*: JAX tracing, lowering and XLA "
           "compilation or loading from the compilation cache.", "",
           "| experiment | wall s | compile s | rest s |", "|---|---|---|---|"]
  total_wall = total_compile = 0.0
  for s in summaries:
    wall, comp = s.get("wall_seconds_this_run"), s.get("compile_seconds_this_run")
    if wall is None:
      continue
    total_wall += wall
    if comp is None:
      lines.append(f"| {s.get('experiment', '')} | {wall:.0f} | | |")
      continue
    total_compile += comp
    lines.append(f"| {s.get('experiment', '')} | {wall:.0f} | {comp:.0f} | {wall - comp:.0f} |")
  lines += [f"| total | {total_wall:.0f} | {total_compile:.0f} | "
            f"{total_wall - total_compile:.0f} |", ""]
  return lines


def verdict_of(summary: dict[str, Any]) -> str:
  """summary['verdict']; for a summary written before verdicts, holds -> holds, else fails."""
  if summary.get("verdict") in verdicts.VERDICTS:
    return summary["verdict"]
  return "holds" if summary.get("holds") else "fails"


def run_all(config: mlc.ConfigDict, workdir: str, only: Sequence[str] | None = None
            ) -> dict[str, Any]:
  """Checks, then runs every experiment of `config` (those of its runs named in `only`, if
  given), then writes the report (of every experiment in the workdir)."""
  pairs = check(config, workdir, only)
  if jax.process_index() == 0:
    results.makedirs(workdir)
  summaries = {}
  for name, sub in pairs:
    logging.info("running %s", sub.experiment)
    summaries[sub.experiment] = run_experiment(sub, workdir)
  if jax.process_index() == 0:
    write_report(workdir)
  return summaries
