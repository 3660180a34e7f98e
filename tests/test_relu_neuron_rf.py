"""relu_neuron_rf (Thms. 4.2/4.3): certified r·min B against an independent QP solver, exact
against sample mode, and a verdict that can hold, fail or stay inconclusive."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import quadprog

from rfjax import api
from rfjax import boxqp
from rfjax import experiments
from rfjax import features
from rfjax.experiments import relu_neuron_rf as rn


def _psi_problems(d, r, num_w_star, seed=0, feature="relu_biased"):
  key = jax.random.key(seed)
  k_feat, k_star = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
  w = np.asarray(api.w_star_sphere(k_star, d, num_w_star))
  specs = rn._targets(d, w, ("psi",))
  params = features.get(feature).init(k_feat, d, r, dtype=jnp.float64)
  return rn._exact_problems(params, feature, d, w, specs), params, w, specs


def _qp_min_error(p, B):
  """min E(u) s.t. |u_i| <= B by quadprog (an independent dual active-set solver)."""
  r = p.c_r.shape[0]
  C = np.hstack([np.eye(r), -np.eye(r)])
  u = quadprog.solve_qp(p.Q_rr, p.c_r, C, -B * np.ones(2 * r))[0]
  return boxqp.certify(p, u, B)


def _check_brackets(d, r, num_w_star, eps):
  probs, *_ = _psi_problems(d, r, num_w_star)
  statuses = []
  for s, p in enumerate(probs):
    res = boxqp.min_B(p, eps, B_max=1e8 / r, ratio=1.2)
    statuses.append(res.status)
    if res.status == "not_reachable":   # quadprog's least squares agrees: above ε for any B
      ls = _qp_min_error(p, 1e8 / r)
      assert ls.error > eps and res.lower_at_B_max > eps
      continue
    assert res.status == "reached", (s, res.status)
    assert res.B_hi / res.B_lo <= 1.2
    below, above = _qp_min_error(p, res.B_lo * (1 - 1e-9)), _qp_min_error(p, res.B_hi)
    # quadprog's own certificate: nothing below B_lo reaches ε, its B_hi point does.
    assert below.lower > eps - 1e-9, (s, below.lower)
    assert above.error <= eps + 1e-9, (s, above.error)
  return statuses


def test_min_B_bracket_matches_an_independent_solver():
  assert "reached" in _check_brackets(d=2, r=256, num_w_star=2, eps=1 / 6)
  assert "not_reachable" in _check_brackets(d=5, r=128, num_w_star=1, eps=1 / 6)


@pytest.mark.slow
def test_min_B_at_d3_r1024_for_eight_w_star_matches_an_independent_solver():
  """The claim as stated: d = 3, r = 1024 biased ReLU features, ψ target, 8 w*."""
  assert _check_brackets(d=3, r=1024, num_w_star=8, eps=1 / 6) == ["reached"] * 8


def test_exact_and_sample_moments_give_the_same_fits():
  d, r = 2, 24
  probs, params, w, specs = _psi_problems(d, r, 1)
  fn = rn._sample_targets_fn(d, w, specs)
  sample = rn._sample_problems(params, "relu_biased", d, fn, jax.random.key(9), n=2**19,
                               chunk=2**14, num_targets=1)
  pe, ps = probs[0], sample[0]
  assert ps.yy == pytest.approx(pe.yy, rel=2e-2)
  np.testing.assert_allclose(ps.Q_rr, pe.Q_rr, atol=3e-2 * np.max(np.diag(pe.Q_rr)))
  for B in (0.05, 0.5):
    fe, fs = boxqp.solve(pe, B), boxqp.solve(ps, B)
    assert fs.error == pytest.approx(fe.error, rel=5e-2, abs=5e-3)
    # The sample-mode weights scored on the exact moments are near the exact optimum.
    assert boxqp.certify(pe, fs.u_r, B).error == pytest.approx(fe.error, rel=5e-2, abs=5e-3)


def test_neuron_moments_match_monte_carlo():
  d, r = 2, 16
  key = jax.random.key(1)
  w = np.asarray(api.w_star_sphere(jax.random.fold_in(key, 1), d, 1))
  specs = rn._targets(d, w, ("neuron",))[:3]
  params = features.get("relu_biased").init(jax.random.fold_in(key, 0), d, r,
                                            dtype=jnp.float64)
  exact = rn._exact_problems(params, "relu_biased", d, w, specs)
  fn = rn._sample_targets_fn(d, w, specs)
  sample = rn._sample_problems(params, "relu_biased", d, fn, jax.random.key(2), n=2**18,
                               chunk=2**14, num_targets=len(specs))
  for pe, ps in zip(exact, sample):
    assert ps.yy == pytest.approx(pe.yy, rel=3e-2)
    np.testing.assert_allclose(ps.c_r, pe.c_r, atol=3e-2 * math.sqrt(pe.yy))


@pytest.fixture(scope="module")
def smoke(request):
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  config = load_config("relu_neuron_rf", "smoke")
  rows = experiments.run("relu_neuron_rf", config, jax.random.key(0))
  return config, rows, rn.summarize(config, rows)


def test_smoke_rows_are_certified(smoke):
  config, rows, summary = smoke
  assert {r["feature"] for r in rows} == set(config.features)
  assert {r["mode"] for r in rows} == {"exact", "sample"}
  for row in rows:
    assert row["status"] in rn.STATUSES
    if row["status"] == "reached":
      assert row["rB_lo"] <= row["rB_min"] <= row["rB_hi"] <= config.bracket_ratio * row["rB_lo"]
      assert row["error_hi"] <= row["eps"] + 1e-12
    if row["status"] == "not_reachable":
      assert row["lower_at_rB_max"] > row["eps"]
      assert row["ls_error"] > row["eps"]
  # ψ is reached at d = 2 by biased ReLU features and the ε = 1/4 threshold needs less r·B.
  psi2 = [r for r in rows if r["feature"] == "relu_biased" and r["d"] == 2 and
          r["target"] == "psi" and r["status"] == "reached"]
  by_seed = {}
  for r in psi2:
    by_seed.setdefault(r["seed"], {})[r["eps"]] = r["rB_hi"]
  assert by_seed and all(v[1 / 4] < v[1 / 6] for v in by_seed.values() if len(v) == 2)
  assert summary["verdict"] in ("holds", "fails", "inconclusive")
  assert summary["holds"] == (summary["verdict"] == "holds")
  assert summary["would_fail_if"] and summary["departures"]


def test_smoke_figure_draws(smoke, tmp_path):
  from rfjax import plots  # pylint: disable=import-outside-toplevel
  config, rows, summary = smoke
  path = tmp_path / "relu_neuron_rf.png"
  plots.save("relu_neuron_rf", config, rows, dict(summary, experiment="relu_neuron_rf"),
             str(path))
  assert path.stat().st_size > 10_000


def _synthetic(config, rB_by_d, not_reachable_ds=(), unresolved_ds=()):
  """Rows of one verdict family / ψ / ε at rate_r, w* spread by a factor 1.1 around rB_by_d."""
  rows = []
  for eps in config.eps_psi:
    for d in sorted(set(rB_by_d) | set(not_reachable_ds) | set(unresolved_ds)):
      for s in range(config.num_w_star):
        row = dict(feature=config.verdict_features[0], d=d, r=config.rate_r, seed=s,
                   target="psi", eps=eps, relative_ls_error=0.1, mode="exact")
        if d in unresolved_ds:
          row.update(status="unresolved", rB_min=None)
        elif d in not_reachable_ds:
          row.update(status="not_reachable", rB_min=None)
        else:
          row.update(status="reached", rB_min=rB_by_d[d] * 1.1 ** (s - 2))
        rows.append(row)
  return rows


def test_verdict_holds_fails_or_is_inconclusive():
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  config = load_config("relu_neuron_rf")
  config.features, config.targets = ("relu_biased",), ("psi",)
  grow = {2: 30.0, 3: 500.0, 4: 9000.0}
  s = rn.summarize(config, _synthetic(config, grow, not_reachable_ds=(5, 6)))
  assert s["verdict"] == "holds", s["verdict_reasons"]
  s = rn.summarize(config, _synthetic(config, {2: 9000.0, 3: 500.0, 4: 30.0}))
  assert s["verdict"] == "fails" and "falls with d" in " ".join(s["verdict_reasons"])
  # Reached at d = 4 while certified out of reach at d = 3: growth contradicted.
  s = rn.summarize(config, _synthetic(config, {2: 30.0, 4: 900.0}, not_reachable_ds=(3,)))
  assert s["verdict"] == "fails"
  # Too few resolved d (nothing reached beyond d = 2): inconclusive, never holds.
  s = rn.summarize(config, _synthetic(config, {2: 30.0}, not_reachable_ds=(3, 4, 5)))
  assert s["verdict"] == "inconclusive"
  s = rn.summarize(config, _synthetic(config, {2: 30.0, 3: 500.0}, unresolved_ds=(4,)))
  assert s["verdict"] == "inconclusive"
  assert s["holds"] is False


def test_rate_uses_the_median_over_w_star():
  """A d where a minority of w* is certified out of reach still has a finite median and
  enters the rate; one where half or more are out of reach, or one is unresolved, does not."""
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  config = load_config("relu_neuron_rf")
  config.features, config.targets, config.eps_psi = ("relu_biased",), ("psi",), (1 / 6,)
  n = config.num_w_star
  rows = _synthetic(config, {2: 30.0, 3: 500.0, 4: 9000.0})
  last = [x for x in rows if x["d"] == 4]
  last[0].update(status="not_reachable", rB_min=None)     # 1 of n out of reach at d = 4
  part = rn.summarize(config, rows)["parts"]["relu_biased/psi/ε=0.166667"]
  assert part["resolved_ds"] == [2, 3, 4] and part["verdict"] == "holds"
  # Its median: the remaining seven spread 1.1^(s − 2), s = 1..7, and one above them all.
  vals = sorted([9000.0 * 1.1 ** (s - 2) for s in range(1, n)] + [config.rB_max])
  med = np.quantile(vals, 0.5, method="inverted_cdf")
  slope = np.polyfit([2, 3, 4], np.log([np.quantile([30.0 * 1.1 ** (s - 2) for s in range(n)], 0.5),
                                        np.quantile([500.0 * 1.1 ** (s - 2) for s in range(n)], 0.5),
                                        np.median(vals)]), 1)[0]
  assert med > 9000.0 and part["rate_per_d"] == pytest.approx(slope, rel=1e-12)
  for x in last[: n // 2]:                                   # half out of reach: no median
    x.update(status="not_reachable", rB_min=None)
  part = rn.summarize(config, rows)["parts"]["relu_biased/psi/ε=0.166667"]
  assert part["resolved_ds"] == [2, 3] and part["verdict"] == "inconclusive"
  rows = _synthetic(config, {2: 30.0, 3: 500.0, 4: 9000.0})
  next(x for x in rows if x["d"] == 3).update(status="unresolved", rB_min=None)
  part = rn.summarize(config, rows)["parts"]["relu_biased/psi/ε=0.166667"]
  assert part["resolved_ds"] == [2, 4] and part["unresolved_ds"] == [3]


def test_bad_config_is_refused():
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  from rfjax import validation  # pylint: disable=import-outside-toplevel
  config = load_config("relu_neuron_rf", "smoke")
  config.rate_r = 7
  with pytest.raises(validation.ConfigError, match="rate_r"):
    rn.validate(config)
  config = load_config("relu_neuron_rf", "smoke")
  config.eps_psi = (0.5,)
  with pytest.raises(validation.ConfigError, match="eps_psi"):
    rn.validate(config)
  config = load_config("relu_neuron_rf", "smoke")
  config.verdict_features = ("deep_net",)
  with pytest.raises(validation.ConfigError, match="verdict_features"):
    rn.validate(config)
