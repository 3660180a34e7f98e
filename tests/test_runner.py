"""The runner's numerical safety: a cell that overflows writes one error row naming the
cell and the quantity; the other cells, the summary and the figure go on without it;
a rerun neither repeats nor loses rows. Verdicts: a run with failed cells is inconclusive,
a summary without a verdict is an error, and the report and the figure title show the
verdict; every registered experiment's smoke summary carries a valid one."""
import functools
import json

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections as mlc
import numpy as np
import pytest

from conftest import smoke_run
from rfjax import experiments
from rfjax import plots
from rfjax import results
from rfjax import runner
from rfjax import sweep
from rfjax import verdicts

NAME = "overflow_probe"


def _one_seed(key, *, scale):
  """exp(scale·(1 + u)) in float32, u ~ U[0, 1): overflows to inf for scale ≳ 89."""
  u = jax.random.uniform(key, (), jnp.float32)
  value = jnp.exp(jnp.float32(scale) * (1 + u))
  excess = value - jnp.exp(jnp.float32(scale))       # inf − inf = NaN where both overflow
  return dict(value=value, excess=excess)


def _run_cell(config, cell, key):
  out = sweep.over_seeds(functools.partial(_one_seed, scale=cell["scale"]),
                         sweep.seed_keys(key, config.num_seeds))
  return [dict(scale=cell["scale"], seed=s, value=float(out["value"][s]),
               excess=float(out["excess"][s]), error=float(out["value"][s]) - 1)
          for s in range(config.num_seeds)]


def _summarize(config, rows):
  mean = float(np.mean([r["value"] for r in rows]))
  return dict(claim="probe", prediction="finite", measured=f"mean value {mean:.4g}",
              **verdicts.fields(verdicts.judge(bool(np.isfinite(mean))),
                                would_fail_if="a non-finite mean value",
                                departures="a probe, not a theorem"),
              mean_value=mean, scales=sorted({r["scale"] for r in rows}))


def _plot(config, rows, summary):
  fig, ax = plt.subplots()
  ax.plot([r["scale"] for r in rows], [r["value"] for r in rows], "o")
  return fig


def _register_probe(summarize):
  experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
      validate=lambda config: None, cells=lambda c: [dict(scale=s) for s in c.scales],
      run_cell=_run_cell, summarize=summarize, claim="probe", figure=_plot,
      row_id_fields=("seed",)))


@pytest.fixture
def probe():
  _register_probe(_summarize)
  try:
    yield
  finally:
    experiments.EXPERIMENTS.unregister(NAME)


def _config():
  c = mlc.ConfigDict()
  c.experiment, c.seed, c.num_seeds = NAME, 0, 3
  c.scales = (1.0, 100.0, 2.0)            # the middle cell overflows float32
  return c


def test_overflowing_cell_becomes_one_error_row_and_the_sweep_goes_on(probe, tmp_path):
  config = _config()
  summaries = runner.run_all(config, str(tmp_path))
  outdir = tmp_path / NAME
  path = outdir / "results.jsonl"
  rows = results.load_rows(str(path))
  bad_cell = results.cell_key(NAME, dict(scale=100.0))
  errors = [r for r in rows if "failure" in r]
  assert len(errors) == 1 and errors[0]["cell"] == bad_cell
  assert errors[0]["failure"].startswith(bad_cell + ": non-finite value = inf (seed=")
  assert "excess = nan (seed=0)" in errors[0]["failure"]
  assert errors[0]["nonfinite"] == ["value", "excess", "error"] and errors[0]["rows_dropped"] == 3
  good = [r for r in rows if "failure" not in r]
  assert all(r["error"] == r["value"] - 1 for r in good)   # a row field may be named "error"
  assert sorted({r["scale"] for r in good}) == [1.0, 2.0] and len(good) == 6
  # The good cells hold what the computation gives them, independently recomputed.
  root = jax.random.key(0)
  for r in good:
    key = sweep.seed_keys(experiments.cell_prng_key(root, NAME, dict(scale=r["scale"])), 3)
    u = float(jax.random.uniform(key[r["seed"]], (), jnp.float32))
    np.testing.assert_allclose(r["value"], np.exp(np.float32(r["scale"]) * (1 + u)), rtol=1e-6)

  summary = json.loads((outdir / "summary.json").read_text())
  assert summary == json.loads(json.dumps(results.to_json(summaries[NAME])))
  assert summary["failed_cells"] == 1 and summary["failed"][0]["cell"] == bad_cell
  assert summary["holds"] is False and summary["measured"].startswith("1 of 3 cells failed")
  # The good cells alone would hold; with a failed cell the claim is not judged.
  assert summary["verdict"] == "inconclusive"
  assert summary["verdict_reasons"][:2] == [
      "1 of 3 cells failed (non-finite values), so the claim was not measured on the whole "
      "grid", "the remaining cells alone give 'holds'"]
  assert summary["would_fail_if"] == "a non-finite mean value"
  assert summary["scales"] == [1.0, 2.0]
  np.testing.assert_allclose(summary["mean_value"], np.mean([r["value"] for r in good]))
  assert (outdir / f"{NAME}.png").exists()
  report = (tmp_path / "report.md").read_text()
  assert f"| [{NAME}](#{NAME}) | inconclusive |" in report
  assert "- verdict: **inconclusive**" in report and "- reason: 1 of 3 cells failed" in report
  assert 0.0 <= summary["compile_seconds_this_run"] <= summary["wall_seconds_this_run"]
  assert "| experiment | wall s | compile s | rest s |" in report
  assert f"| {NAME} | {summary['wall_seconds_this_run']:.0f} |" in report

  # A rerun treats the error cell as done: nothing recomputed, nothing repeated.
  text = path.read_text()
  runner.run_all(config, str(tmp_path))
  assert path.read_text() == text
  # Deleting the error row retries that cell alone, which fails the same way again.
  kept = [l for l in text.splitlines(keepends=True) if '"failure"' not in l]
  path.write_text("".join(kept))
  runner.run_all(config, str(tmp_path))
  assert sorted(path.read_text().splitlines()) == sorted(text.splitlines())


def test_a_grid_where_every_cell_fails_still_writes_a_summary(probe, tmp_path):
  config = _config()
  config.scales = (100.0, 200.0)
  summary = runner.run_all(config, str(tmp_path))[NAME]
  assert summary["failed_cells"] == 2 and summary["holds"] is False
  assert summary["verdict"] == "inconclusive" and summary["would_fail_if"]
  assert summary["measured"].endswith("no summary: every cell failed")
  assert not (tmp_path / NAME / f"{NAME}.png").exists()
  rows = results.load_rows(str(tmp_path / NAME / "results.jsonl"))
  assert len(rows) == 2 and all("non-finite value = inf" in r["failure"] for r in rows)


def test_nonfinite_fields_sees_nested_values_and_names_the_first_row():
  rows = [dict(seed=0, a=1.0, b=[1.0, 2.0]), dict(seed=1, a=float("nan"), b=[1.0, np.inf]),
          dict(seed=2, a=float("-inf"), b=[0.0], note="inf-free text")]
  bad = runner.nonfinite_fields(rows)
  assert [(f, r["seed"]) for f, r in bad] == [("a", 1), ("b", 1)]
  assert runner.nonfinite_fields([dict(a=1.0, b="text", c=None, d=[1, 2])]) == []


def test_a_summary_without_a_verdict_is_a_clear_error(tmp_path):
  def old_style(config, rows):
    return dict(claim="probe", prediction="finite", measured="", holds=True)

  _register_probe(old_style)
  try:
    config = _config()
    config.scales = (1.0,)
    with pytest.raises(ValueError, match=f"{NAME}: summarize\\(\\) returned no 'verdict'"):
      runner.run_all(config, str(tmp_path))
  finally:
    experiments.EXPERIMENTS.unregister(NAME)
  good = verdicts.fields("fails", would_fail_if="x", departures="y")
  assert runner.check_verdict("e", dict(good)) == good
  for bad, match in [(dict(good, holds=True), "disagrees"), (dict(good, verdict="no"), "one of"),
                     (dict(good, would_fail_if=""), "would_fail_if"),
                     (dict(good, departures=None), "departures")]:
    with pytest.raises(ValueError, match=match):
      runner.check_verdict("e", bad)


def test_report_shows_verdicts_and_falls_back_to_holds_for_old_summaries(tmp_path):
  summaries = dict(
      a=dict(claim="A", measured="m", **verdicts.fields(
          "fails", would_fail_if="a big error", departures="few steps", reasons=["too big"])),
      b=dict(claim="B", measured="m", **verdicts.fields(
          "inconclusive", would_fail_if="w", departures="d")),
      c=dict(claim="C", measured="m", **verdicts.fields("holds", would_fail_if="w",
                                                        departures="d")),
      old_yes=dict(claim="D", measured="m", holds=True),
      old_no=dict(claim="E", measured="m", holds=False))
  for name, s in summaries.items():
    (tmp_path / name).mkdir()
    (tmp_path / name / "summary.json").write_text(json.dumps(s))
  report = open(runner.write_report(str(tmp_path))).read()
  for name, shown in [("a", "**FAILS**"), ("b", "inconclusive"), ("c", "holds"),
                      ("old_yes", "holds"), ("old_no", "**FAILS**")]:
    assert f"| [{name}](#{name}) | {shown} | m |" in report
  assert ("- verdict: **fails**\n- prediction: \n- measured: m\n- would fail if: a big error\n"
          "- departures from the theorem's regime: few steps\n- reason: too big\n") in report
  assert "- would fail if: (not recorded)" in report


@pytest.mark.parametrize("summary,title", [
    (dict(verdict="holds", holds=True), "prediction holds"),
    (dict(verdict="fails", holds=False), "prediction FAILS"),
    (dict(verdict="inconclusive", holds=False), "prediction inconclusive"),
    (dict(holds=True), "prediction holds"), (dict(holds=False), "prediction FAILS")])
def test_figure_title_shows_the_verdict(summary, title):
  fig = plt.figure()
  try:
    plots.title(fig, dict(summary, experiment="e"))
    assert fig._suptitle.get_text() == f"e: {title}"
  finally:
    plt.close(fig)


# The smoke runs below are computed once per test session (conftest memoizes
# experiments.run_cells) and shared with each experiment's own tests and tests/test_figures.py.


@pytest.mark.parametrize("name", experiments.names())
def test_every_experiment_gives_its_smoke_run_a_verdict(name):
  config, cells = smoke_run(name)
  summary = experiments.get(name).summarize(config, [r for _, rows in cells for r in rows])
  runner.check_verdict(name, summary)
  assert summary["verdict"] in verdicts.VERDICTS
  assert summary["holds"] == (summary["verdict"] == "holds")
  assert summary["would_fail_if"].strip()


def test_row_keys_follow_the_experiments_fields_and_fall_back_to_positions():
  rows = [dict(d=4, seed=s, regime=g, x=0.5) for g in ("full", "lazy") for s in (0, 1)]
  keys = runner.row_keys("e/d=4", dict(d=4), rows, ("regime", "seed"))
  assert keys[:2] == ["e/d=4/regime=full/seed=0", "e/d=4/regime=full/seed=1"]
  # The field order is the experiment's, fields of the cell and missing fields left out.
  assert runner.row_keys("e/d=4", dict(d=4), rows[:1], ("seed", "d", "nope", "regime")) == [
      "e/d=4/seed=0/regime=full"]
  # Fields that do not tell the rows apart: keyed by position instead.
  assert runner.row_keys("e/d=4", dict(d=4), rows, ("seed",)) == [
      f"e/d=4/seed={s}/row={i}" for i, s in enumerate((0, 1, 0, 1))]
  bad = runner.error_row("e/d=4", dict(d=4), rows, [("x", rows[3])], ("regime", "seed"))
  assert bad["failure"] == "e/d=4: non-finite x = 0.5 (regime=lazy, seed=1)"


@pytest.mark.parametrize("name", experiments.names())
def test_every_experiment_tells_its_smoke_rows_apart_by_its_row_id_fields(name):
  """Row keys from the experiment's own row_id_fields are unique within every cell of its
  smoke run, without the positional fallback (so a resumed run finds each row by content)."""
  config, cells = smoke_run(name)
  fields = experiments.get(name).row_id_fields
  assert fields, f"{name} registers no row_id_fields"
  for cell, rows in cells:
    keys = runner.row_keys(results.cell_key(name, cell), cell, rows, fields)
    assert not any("/row=" in k for k in keys), (name, cell, keys[:4])
    assert len(set(keys)) == len(rows)
