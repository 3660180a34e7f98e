"""neuron_gd: the exact relative error against Monte Carlo; SGD learns the hard neuron;
the certified random-features box fit at the budget; the verdict logic."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from rfjax import boxqp
from rfjax import experiments
from rfjax.experiments import neuron_gd


def test_exact_relative_error_matches_monte_carlo():
  rng = np.random.default_rng(1)
  d = 5
  w, ws = rng.standard_normal(d), 3 * rng.standard_normal(d)
  b, bs = 0.4, -1.2
  x = rng.standard_normal((2_000_000, d))
  y = np.maximum(x @ ws + bs, 0)
  n = np.maximum(x @ w + b, 0)
  mc = np.mean((n - y) ** 2) / np.mean(y**2)
  exact = float(neuron_gd.relative_error(jnp.asarray(w), jnp.asarray(b), jnp.asarray(ws),
                                         jnp.asarray(bs)))
  np.testing.assert_allclose(exact, mc, rtol=1e-2)
  assert float(neuron_gd.relative_error(jnp.asarray(ws), jnp.asarray(bs), jnp.asarray(ws),
                                        jnp.asarray(bs))) < 1e-12


def test_targets_are_psi_offsets_in_the_bulk():
  specs = neuron_gd.target_specs(6, (-1.0, 0.0, 1.0), ("psi_neuron", "rescaled_neuron"))
  assert len(specs) == 6
  for s in specs:
    assert abs(s["c"]) <= 2 * 6
    assert s["scale"] == (1.0 if s["kind"] == "psi_neuron" else 4 * 9 + 2)


def test_smoke_sgd_learns_and_random_features_do_not(smoke_config):
  config = smoke_config("neuron_gd")
  rows = experiments.run("neuron_gd", config, jax.random.key(0))
  summary = neuron_gd.summarize(config, rows)
  assert summary["verdict"] == "holds", summary["verdict_reasons"]
  for row in rows:
    if row["regime"] == "random_features":
      assert row["lower_relative_error"] <= row["relative_error"] + 1e-12
      assert row["relative_error"] >= row["ls_relative_error"] - 1e-9


# ------------------------------------------------------------------ the random-features side


def _small_problem(d=3, r=24, kink=0.0, scale=1.0, seed=0):
  specs = [dict(kind="psi_neuron", kink=kink, c=kink * d, scale=scale)]
  c_t = jnp.array([s["c"] for s in specs], jnp.float64)
  scale_t = jnp.array([s["scale"] for s in specs], jnp.float64)
  m = neuron_gd._rf_moments(jax.random.key(seed), c_t, scale_t, d=d, r=r, feature="relu_biased")
  m = jax.tree.map(np.asarray, m)
  return boxqp.problem(m._replace(b_r=m.b_r[0], y_mean=m.y_mean[0], yy=m.yy[0])), m


@pytest.mark.parametrize("B", [0.05, 0.3, 3.0])
def test_box_fit_at_budget_is_certified_and_matches_lsq_linear(B):
  p, m = _small_problem()
  u_start = np.asarray(neuron_gd._first_order_box(
      jax.tree.map(jnp.asarray, m), jnp.asarray(B, jnp.float64), 50))[0]
  fit = neuron_gd.box_at_budget(p, B, u_start, tolerance=1e-2, exact=True, max_pivots=100)
  assert fit["lower_relative_error"] <= fit["relative_error"] + 1e-12
  assert fit["relative_error"] >= fit["ls_relative_error"] - 1e-12
  # Independent: scipy's bounded least squares on the Cholesky form of the same quadratic.
  L = np.linalg.cholesky(p.Q_rr + 1e-14 * np.trace(p.Q_rr) * np.eye(len(p.c_r)))
  ref = optimize.lsq_linear(L.T, np.linalg.solve(L, p.c_r), bounds=(-B, B), tol=1e-14,
                            lsmr_tol="auto", max_iter=5000)
  ref_rel = boxqp.error(p, np.clip(ref.x, -B, B)) / p.yy
  assert fit["relative_error"] <= ref_rel + 1e-9
  assert fit["lower_relative_error"] <= ref_rel + 1e-12
  np.testing.assert_allclose(fit["relative_error"], ref_rel, rtol=1e-6, atol=1e-10)


def test_budget_is_the_stated_polynomial(smoke_config):
  config = smoke_config("neuron_gd")
  for d in (2, 8):
    assert neuron_gd.rf_budget(config, d) == config.rf_budget_coef * d ** config.rf_budget_power


# ------------------------------------------------------------------ the verdict


def _config(**kw):
  from conftest import load_config
  c = load_config("neuron_gd")
  c.ds, c.kinks, c.kinds, c.steps = (4, 8, 16), (0.0, 1.0), ("psi_neuron",), 100
  c.rf_min_d, c.rf_min_points, c.tolerance = 8, 2, 1e-2
  c.update(kw)
  return c


def _rows(config, gd_steps=lambda d: 10 * d, rf=lambda d, kink: (0.5, 0.5)):
  """Synthetic rows: every GD run reaches at gd_steps(d); RF (error, lower) per (d, kink)."""
  final = max(neuron_gd.log_steps(config.steps))
  rows = []
  for d in config.ds:
    for seed in range(2):
      for kink in config.kinks:
        rows.append(dict(d=d, seed=seed, regime="gd", target="psi_neuron", kink=kink,
                         step=final, relative_error=1e-6, reached_at=gd_steps(d)))
        err, lower = rf(d, kink)
        rows.append(dict(d=d, seed=seed, regime="random_features", target="psi_neuron",
                         kink=kink, relative_error=err, lower_relative_error=lower,
                         gap_relative=err - lower, ls_relative_error=lower, ls_r_max_u=1.0,
                         min_B_status=None, min_rB_lo=None, min_rB_hi=None))
  return rows


def test_verdict_holds_when_gd_learns_and_some_kink_is_certified_hard():
  config = _config()
  # kink 0 is fit (below the tolerance), kink 1 is certified above it: the claim is "some".
  rows = _rows(config, rf=lambda d, k: (0.5, 0.4) if k == 1.0 else (1e-3, 5e-4))
  s = neuron_gd.summarize(config, rows)
  assert s["verdict"] == "holds" and s["holds"], s["verdict_reasons"]
  assert s["would_fail_if"] and s["departures"]


def test_verdict_fails_when_every_kink_is_fit_at_some_checked_d():
  config = _config()
  rows = _rows(config, rf=lambda d, k: (5e-3, 4e-3) if d == 16 else (0.5, 0.4))
  s = neuron_gd.summarize(config, rows)
  assert s["verdict"] == "fails" and not s["holds"]
  assert any("d = 16" in r for r in s["verdict_reasons"])
  # ... but below rf_min_d a fit reaching the tolerance is not checked.
  rows = _rows(config, rf=lambda d, k: (5e-3, 4e-3) if d == 4 else (0.5, 0.4))
  assert neuron_gd.summarize(config, rows)["verdict"] == "holds"


def test_verdict_fails_when_gd_misses_or_steps_grow_too_fast():
  config = _config()
  rows = _rows(config, gd_steps=lambda d: d**3)           # steps ∝ d³ > d²
  assert neuron_gd.summarize(config, rows)["verdict"] == "fails"
  rows = _rows(config)
  for r in rows:
    if r["regime"] == "gd" and r["d"] == 8 and r["kink"] == 0.0:
      r["reached_at"] = None                              # half the runs at d = 8 miss
  assert neuron_gd.summarize(config, rows)["verdict"] == "fails"


def test_verdict_inconclusive_when_a_gap_straddles_the_tolerance_or_too_few_d():
  config = _config()
  # At d = 16 no kink is certified above the tolerance, and one is not fit either.
  rows = _rows(config, rf=lambda d, k: (0.05, 1e-3) if d == 16 else (0.5, 0.4))
  s = neuron_gd.summarize(config, rows)
  assert s["verdict"] == "inconclusive", s["verdict_reasons"]
  config = _config(rf_min_d=16)                           # one checked d < rf_min_points
  s = neuron_gd.summarize(config, _rows(config))
  assert s["verdict"] == "inconclusive"
