"""psi_correlation (Prop. 4.4): exact coupling correlations, exact mode against Monte Carlo on
the same draws, the bound fit and a verdict that can fail."""
import math

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest
from numpy.testing import assert_allclose

from rfjax import api
from rfjax import psi
from rfjax import sweep
from rfjax import validation
from rfjax.experiments import psi_correlation as pc


def _sphere(key, k, d, radius):
  g = jax.random.normal(key, (k, d), jnp.float64)
  return radius * g / jnp.linalg.norm(g, axis=1, keepdims=True)


def _mc_coupling(key, w_d, w_star_d, m, n=2**20):
  """Monte Carlo <1[<w,x> >= 0] x_j, ψ_{w*}> for every j, its s.e., and E f_j² with its s.e."""
  d = w_d.shape[0]
  x_nd = jax.random.normal(key, (n, d), jnp.float64)
  f_nd = jnp.where((x_nd @ w_d >= 0)[:, None], x_nd, 0.0)
  p_n = psi.psi(x_nd @ w_star_d, m)
  prod_nd = f_nd * p_n[:, None]
  sq_nd = f_nd * f_nd
  se = lambda a: np.asarray(jnp.std(a, axis=0) / math.sqrt(n))
  return (np.asarray(jnp.mean(prod_nd, axis=0)), se(prod_nd),
          np.asarray(jnp.mean(sq_nd, axis=0)), se(sq_nd))


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("paper_r", [True, False])
def test_coupling_correlation_vs_monte_carlo(d, paper_r):
  """<f, ψ_{w*}> = <x_j, ψ_{w*}>/2 and ‖f‖² = 1/2 for a gate w, against Monte Carlo over x.

  paper_r: R = d, m = ⌈d²/4⌉ (tiny correlations at d = 3); else R = 1, m = 1, where the
  correlation is large and the formula is tested sharply (a missing 1/2 is > 10 s.e. off).
  """
  k_w, k_star, k_x = jax.random.split(jax.random.key(d), 3)
  pp = psi.psi_params(d)
  R, m = (pp.R, pp.m) if paper_r else (1.0, 1)
  w_d = jax.random.uniform(k_w, (d,), jnp.float64, -1 / math.sqrt(d), 1 / math.sqrt(d))
  w_star_d = _sphere(k_star, 1, d, R)[0]
  exact_j = np.asarray(psi.coupling_correlation(w_star_d, jnp.arange(d), m, R))
  mc_j, se_j, sq_j, sq_se_j = _mc_coupling(k_x, w_d, w_star_d, m)
  assert np.all(np.abs(mc_j - exact_j) < 4 * se_j), (mc_j, exact_j, se_j)
  assert np.all(np.abs(sq_j - psi.COUPLING_NORM_SQ) < 4 * sq_se_j)
  if not paper_r:      # the test can fail: <x_j, ψ> (no 1/2, the gate ignored) is far off
    assert np.all(np.abs(mc_j - 2 * exact_j) > 10 * se_j)


@pytest.mark.parametrize("d", [2, 3])
def test_coupling_rho_integral_vs_sampled_w_star(d):
  """The ρ-integral against the mean of exact |corr|/‖f‖ over 20000 sampled w* (and every j)."""
  pp = psi.psi_params(d)
  w_star_kd = _sphere(jax.random.key(10 + d), 20000, d, pp.R)
  corr_kj = np.abs(np.asarray(psi.coupling_correlation(w_star_kd, jnp.arange(d), pp.m)))
  corr_kj /= math.sqrt(psi.COUPLING_NORM_SQ)
  sampled, se = corr_kj.mean(), corr_kj[:, 0].std() / math.sqrt(corr_kj.shape[0])
  integral = float(psi.coupling_mean_abs_correlation(d, pp.R, pp.m))
  assert abs(sampled - integral) < 4 * se, (sampled, integral, se)
  assert se < 0.02 * integral


def test_coupling_rho_integral_closed_form_up_to_d20():
  """E|ρ| = Γ(d/2)/(√π Γ((d+1)/2)), so the ρ-integral is E|ρ|·|E[Uψ(RU)]|/√2 at every d."""
  for d in (2, 3, 4, 6, 8, 10, 12, 16, 20):
    pp = psi.psi_params(d)
    mean_abs_rho = math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)
    want = mean_abs_rho * abs(psi.linear_correlation(pp.R, pp.m)) / math.sqrt(2)
    got = float(psi.coupling_mean_abs_correlation(d, pp.R, pp.m))
    assert got > 0
    assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("feature", [
    "linear_sphere", "coupling",
    pytest.param("relu_biased", marks=pytest.mark.slow)])   # ReLU exact mode compiles ~20 s
def test_exact_matches_monte_carlo_on_the_same_draws(feature):
  """Same features and w*: the sampled-w* exact mean and the Monte Carlo mean agree within the
  Monte Carlo error (mean |corr| moves by at most the mean s.e.)."""
  d, key = 2, jax.random.key(7)
  exact = pc.exact_values(sweep.seed_keys(key, 1), d=d, feature=feature, num_features=4,
                          num_w_star=8)
  mc = api.psi_correlation_mc(sweep.seed_keys(key, 1)[0], d=d, feature=feature, num_features=4,
                              num_w_star=8, n=2**18, chunk=2**14)
  got = float(np.mean(exact["exact_sampled"][0]))
  assert abs(got - float(mc["monte_carlo"])) < 4 * float(mc["stderr"]), feature
  assert float(mc["stderr"]) < 0.1 * float(mc["monte_carlo"])


def test_psi_checks():
  for d in (2, 5):
    checks = pc.psi_checks(d)
    assert checks["psi_sum_max_err"] <= 1e-12
    assert checks["psi_norm_sq"] >= 1 / 6
    assert checks["num_relus"] == 4 * psi.psi_params(d).m + 2
    assert checks["max_abs_relu_coef"] == 2.0


def test_bound_fit_recovers_c_and_c_max():
  rng = np.random.default_rng(0)
  ds, c = [2, 4, 6, 8], 1.5
  groups = [list(math.sqrt(20 * math.exp(-c * d)) * np.exp(0.05 * rng.standard_normal(6)))
            for d in ds]
  fit = pc.bound_fit(ds, groups, level=0.9, num_boot=500)
  assert fit["c_lo"] <= fit["c"] <= fit["c_hi"]
  assert fit["c_lo"] < c < fit["c_hi"] and fit["c_hi"] - fit["c_lo"] < 0.2
  means = [np.mean(g) for g in groups]
  assert_allclose(fit["c_max"], min((math.log(20) - 2 * math.log(v)) / d
                                    for d, v in zip(ds, means)))
  exact = pc.bound_fit(ds, [[math.sqrt(20 * math.exp(-c * d))] * 3 for d in ds], level=0.9,
                       num_boot=200)
  assert_allclose([exact["c"], exact["c_lo"], exact["c_hi"], exact["c_max"]], c, rtol=1e-9)


# ----------------------------------------------------------------------------------------------
# The verdict on synthetic rows.

def _config(**kw):
  c = mlc.ConfigDict(dict(
      ds=(2, 4, 6, 8), exact_features=("relu_biased", "coupling"), mc_ds=(2, 3),
      mc_features=("deep_net",), num_seeds=3, mc_num_seeds=2, mc_n=2**10, min_resolved_ds=3,
      interval_level=0.9, num_boot=300, psi_sum_tol=1e-12, psi_norm_min=1 / 6,
      mc_resolve_factor=3.0))
  c.update(kw)
  return c


def _rows(config, curve, *, sum_err=1e-15, norm=1 / 3, spread=0.05, mc=(1e-2, 1e-4)):
  """Rows with m_d = curve(feature, d) times per-seed noise; Monte Carlo at 1e-3 s.e."""
  rng = np.random.default_rng(1)
  rows = []
  for d in config.ds:
    base = dict(d=d, psi_sum_max_err=sum_err, psi_norm_sq=norm,
                num_relus=4 * psi.psi_params(d).m + 2, max_abs_relu_coef=2.0)
    for f in config.exact_features:
      for s in range(config.num_seeds):
        v = curve(f, d) * math.exp(spread * rng.standard_normal())
        rows.append(dict(base, feature=f, seed=s, mode="exact", mean_abs_corr=v))
        rows.append(dict(base, feature=f, seed=s, mode="exact_sampled", mean_abs_corr=v / 2))
  for d, value in zip(config.mc_ds, mc):
    for s in range(config.mc_num_seeds):
      rows.append(dict(d=d, psi_sum_max_err=sum_err, psi_norm_sq=norm,
                       num_relus=4 * psi.psi_params(d).m + 2, feature="deep_net", seed=s,
                       mode="monte_carlo", mean_abs_corr=value, mc_stderr=1e-3))
  return rows


def _decaying(f, d):
  return math.exp(-1.0 * d)


def test_verdict_holds_on_exponential_decay():
  config = _config()
  s = pc.summarize(config, _rows(config, _decaying))
  assert s["verdict"] == "holds" and s["holds"] and not s["verdict_reasons"]
  fit = s["bound_fits"]["relu_biased"]
  assert 0 < fit["c_lo"] <= fit["c"] <= fit["c_hi"] and abs(fit["c"] - 2.0) < 0.1
  assert fit["num_resolved"] == 4
  # Monte Carlo: resolved at d = 2 only (1e-2 > 3e-3; 1e-4 < 3e-3), reported, not deciding.
  mc = s["monte_carlo"]["deep_net"]
  assert mc[2]["resolved"] and not mc[3]["resolved"]
  assert_allclose(mc[3]["floor"], 3e-3)
  assert "unresolved beyond d = 2" in s["bound_fits"]["deep_net (monte_carlo)"]["status"]
  assert "do not decide" in s["departures"] and s["would_fail_if"]


def test_verdict_fails_when_an_exact_family_does_not_decay():
  config = _config()
  growing = lambda f, d: math.exp(0.5 * d) * 1e-3 if f == "coupling" else math.exp(-d)
  s = pc.summarize(config, _rows(config, growing))
  assert s["verdict"] == "fails" and not s["holds"]
  assert s["bound_fits"]["coupling"]["verdict"] == "fails"
  assert any("coupling" in r for r in s["verdict_reasons"])


def test_verdict_fails_on_p1_or_p2():
  config = _config()
  assert pc.summarize(config, _rows(config, _decaying, sum_err=1e-9))["verdict"] == "fails"
  assert pc.summarize(config, _rows(config, _decaying, norm=0.1))["verdict"] == "fails"


def test_verdict_inconclusive_on_too_few_d_or_a_flat_noisy_curve():
  config = _config(ds=(2, 4))
  assert pc.summarize(config, _rows(config, _decaying))["verdict"] == "inconclusive"
  config = _config()
  s = pc.summarize(config, _rows(config, lambda f, d: 1e-3, spread=1.0))
  assert s["verdict"] == "inconclusive", s["bound_fits"]


def test_validate_exact_features(smoke_config):
  config = smoke_config("psi_correlation")
  pc.validate(config)
  assert "coupling" in config.exact_features
  bad = smoke_config("psi_correlation")
  bad.exact_features = ("deep_net",)
  with pytest.raises(validation.ConfigError, match="exact_features"):
    pc.validate(bad)


def test_smoke_summary(smoke_config):
  from rfjax import experiments
  config = smoke_config("psi_correlation")
  rows = experiments.run("psi_correlation", config, jax.random.key(0))
  summary = pc.summarize(config, rows)
  assert summary["verdict"] == "holds", summary["verdict_reasons"]
  assert summary["psi_sum_max_err"] <= 1e-12 and summary["min_psi_norm_sq"] >= 1 / 6
  assert all(c > 0 for c in summary["decay_rates"].values())
  # Coupling is exactly the linear unit feature over √2 (docs/theory.md, coupling features).
  lin, cpl = summary["exact"]["linear_sphere"]["exact"], summary["exact"]["coupling"]["exact"]
  for d in lin:
    assert_allclose(cpl[d], lin[d] / math.sqrt(2), rtol=1e-12)
  assert {r["mode"] for r in rows} == {"exact", "exact_sampled", "monte_carlo"}
