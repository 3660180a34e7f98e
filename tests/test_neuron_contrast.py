"""neuron_contrast: step sizes and thresholds by hand, the twins' best readouts against numpy,
the training step against a hand computation, the verdict's branches, the smoke run."""
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest

from conftest import load_config
from rfjax import distributions
from rfjax import experiments
from rfjax import networks
from rfjax import psi
from rfjax import training
from rfjax import validation
from rfjax.experiments import neuron_contrast as nc


def _cfg(variant="smoke"):
  return load_config("neuron_contrast", variant)


def test_step_sizes_by_hand():
  assert nc.step_sizes("lazy", 0.5, 64) == dict(lr_w=0.5 / 64, lr_u=0.5 / 64)
  assert nc.step_sizes("mean_field", 0.5, 64) == dict(lr_w=32.0, lr_u=0.5 / 64)
  with pytest.raises(ValueError):
    nc.step_sizes("ntk", 0.5, 64)


def test_psi_neurons_and_threshold_by_hand():
  # d = 4: m = ⌈16/4⌉ = 4, A = 17, a = 18 neurons with kinks −17, −15, ..., 15, 17.
  offsets, a = nc.psi_neurons(4)
  assert a == 18
  np.testing.assert_array_equal(offsets, np.arange(-17, 18, 2))
  assert nc.threshold(4, 1 / 50) == pytest.approx(1 / (50 * 18 ** 2), rel=1e-15)
  # ψ is −1 plus its a ReLUs at these kinks (docs/theory.md, 'ψ and Prop. 4.4').
  const, coefs, offs = psi.relu_decomposition(psi.psi_params(4).m)
  z = np.linspace(-20, 20, 4001)
  np.testing.assert_allclose(const + np.maximum(z[:, None] - offs, 0) @ coefs,
                             np.asarray(psi.psi(z, 4)), atol=1e-12)


def _squared_step(family, w, u, x, y, c=0.5, regime="full", lr_w=None):
  r = w.shape[0]
  net = networks.make(r, "relu", dtype=jnp.float64)
  p = {"params": {"w": jnp.asarray(w), "u": jnp.asarray(u)}}
  lrs = nc.step_sizes(family, c, r)
  tr = training.make_trainer(net, regime, lr=lrs["lr_u"],
                             lr_w=lrs["lr_w"] if lr_w is None else lr_w, loss="squared")
  state = tr.step(tr.init(p), (jnp.asarray(x), jnp.asarray(y)))
  return np.asarray(state.params["params"]["w"]), np.asarray(state.params["params"]["u"])


@pytest.mark.parametrize("family", ["mean_field", "lazy"])
def test_step_matches_hand_computation(family):
  """One squared-loss step on a 3-neuron ReLU net against numpy, with (η_W, η_U) by hand."""
  rng = np.random.default_rng(0)
  r, d, c = 3, 3, 0.5
  w, u = rng.normal(size=(r, d)), rng.normal(size=r) / r
  x, y = rng.normal(size=(2, d)), rng.normal(size=2)
  eta_w, eta_u = (c * r, c / r) if family == "mean_field" else (c / r, c / r)
  z = x @ w.T
  res = np.maximum(z, 0) @ u - y
  g_u = (res[:, None] * np.maximum(z, 0)).mean(0)
  g_w = ((res[:, None] * u[None, :] * (z > 0))[:, :, None] * x[:, None, :]).mean(0)
  w_new, u_new = _squared_step(family, w, u, x, y, c)
  np.testing.assert_allclose(w_new, w - eta_w * g_w, rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(u_new, u - eta_u * g_u, rtol=1e-12, atol=1e-14)


def test_full_with_zero_first_layer_step_is_random_features():
  """The experiment trains random features as the full net with η_W = 0: W bit-identical,
  and the same U as training's own random_features regime."""
  rng = np.random.default_rng(4)
  w, u = rng.normal(size=(5, 3)), rng.normal(size=5) / 5
  x, y = rng.normal(size=(4, 3)), rng.normal(size=4)
  w0, u0 = _squared_step("lazy", w, u, x, y, lr_w=0.0)
  w1, u1 = _squared_step("lazy", w, u, x, y, regime="random_features")
  np.testing.assert_array_equal(w0, w)
  np.testing.assert_array_equal(w1, w)
  np.testing.assert_allclose(u0, u1, rtol=1e-15, atol=0)


def test_mean_field_step_is_width_independent():
  """Duplicating every neuron k times (U/k) gives the same function; the mean-field step keeps
  the copies exact duplicates of the narrow net's step, the lazy step moves W k² times less."""
  rng = np.random.default_rng(1)
  r, d, k = 3, 4, 4
  w, u = rng.normal(size=(r, d)), rng.normal(size=r) / r
  x, y = rng.normal(size=(5, d)), rng.normal(size=5)
  wk, uk = np.repeat(w, k, axis=0), np.repeat(u, k) / k
  w1, u1 = _squared_step("mean_field", w, u, x, y)
  wk1, uk1 = _squared_step("mean_field", wk, uk, x, y)
  np.testing.assert_allclose(wk1, np.repeat(w1, k, axis=0), rtol=1e-12, atol=1e-13)
  np.testing.assert_allclose(uk1, np.repeat(u1, k) / k, rtol=1e-12, atol=1e-13)
  w1, _ = _squared_step("lazy", w, u, x, y)
  wk1, _ = _squared_step("lazy", wk, uk, x, y)
  np.testing.assert_allclose(wk1 - wk, np.repeat(w1 - w, k, axis=0) / k ** 2, rtol=1e-10)


def test_linearized_relu_net_is_linear_in_coupling_features():
  """N_lin(W, U) for the ReLU equals the coupling features times vec(u_i w_ik)."""
  rng = np.random.default_rng(2)
  r, d = 5, 3
  w0 = rng.uniform(-1, 1, size=(r, d + 1))
  p0 = {"params": {"w": jnp.asarray(w0), "u": jnp.zeros(r)}}
  w, u = w0 + rng.normal(size=(r, d + 1)), rng.normal(size=r)
  p = {"params": {"w": jnp.asarray(w), "u": jnp.asarray(u)}}
  x = rng.normal(size=(7, d))
  n_lin = networks.linearized_apply(p, p0, nc.with_one(jnp.asarray(x)), "relu")
  phi = nc.coupling_features(jnp.asarray(w0), jnp.asarray(x))
  assert phi.shape == (7, r * (d + 1))
  np.testing.assert_allclose(phi @ (u[:, None] * w).ravel(), n_lin, rtol=1e-12, atol=1e-12)


def _stack(m):
  return jax.tree.map(lambda a: np.asarray(a)[None], m)


def test_random_features_best_readout_against_numpy_lstsq():
  """Exact moments + certified least squares vs numpy lstsq on many Monte Carlo samples."""
  d, r = 2, 6
  key = jax.random.key(3)
  c_t = jnp.asarray(nc.psi_neurons(d)[0])
  m = nc.with_psi(_stack(nc._rf_moments_seed(key, c_t, d=d, r=r)), d)
  fit = nc._least_squares(m, 0)
  assert abs(float(m.y_mean[0, -1])) < 1e-12        # E ψ = 0 (ψ is odd) from the neurons' means
  draws = nc._seed_draws(key, d, r)
  w0, w_d = np.asarray(draws["p0"]["params"]["w"]), np.asarray(draws["w_d"])
  x = np.asarray(distributions.gaussian(jax.random.key(5), 400_000, d, dtype=jnp.float64))
  x1 = np.concatenate([x, np.ones((len(x), 1))], axis=1)
  phi = np.concatenate([np.maximum(x1 @ w0.T, 0), np.ones((len(x), 1))], axis=1)
  for j in (0, 2, 3):                 # an almost linear, a bulk and a tail neuron
    y = np.maximum(x @ w_d - float(c_t[j]), 0)
    coef = np.linalg.lstsq(phi, y, rcond=None)[0]
    mc = np.mean((phi @ coef - y) ** 2)
    np.testing.assert_allclose(fit[j].error, mc, rtol=0.05)
    assert fit[j].lower <= fit[j].error <= fit[j].lower + 1e-9 * np.mean(y ** 2)
  # ψ_{w*} itself (the last target), from the neurons' moments, against numpy on ψ's samples.
  y = np.asarray(psi.psi(x @ w_d, psi.psi_params(d).m))
  coef = np.linalg.lstsq(phi, y, rcond=None)[0]
  np.testing.assert_allclose(fit[-1].error, np.mean((phi @ coef - y) ** 2), rtol=0.05)


def test_linearized_best_readout_is_numpy_lstsq_on_the_same_inputs():
  d, r = 2, 4
  key = jax.random.key(6)
  c_t = jnp.asarray(nc.psi_neurons(d)[0])
  n = 4 * r * (d + 1)
  fit = nc._least_squares(_stack(nc._lin_moments_seed(key, c_t, d=d, r=r, n=n)), 0)
  draws = nc._seed_draws(key, d, r)
  # n ≤ one chunk, so sample_moments draws its inputs from fold_in(k_fit, 0).
  xs = np.asarray(distributions.gaussian(jax.random.fold_in(draws["k_fit"], 0), n, d,
                                         dtype=jnp.float64))
  phi = np.concatenate([np.asarray(nc.coupling_features(draws["p0"]["params"]["w"],
                                                        jnp.asarray(xs))),
                        np.ones((n, 1))], axis=1)
  for j in range(len(c_t)):
    ys = np.maximum(xs @ np.asarray(draws["w_d"]) - float(c_t[j]), 0)
    res = ys - phi @ np.linalg.lstsq(phi, ys, rcond=None)[0]
    np.testing.assert_allclose(fit[j].error, np.mean(res ** 2),
                               rtol=1e-6, atol=1e-12 * np.mean(ys ** 2))


def _pair(err, se=1e-9, **diffs):
  row = dict(error=err, error_se=se)
  for g in nc.TWINS:
    row[f"diff_{g}"], row[f"diff_{g}_se"] = diffs.get(g, (-1.0, 1e-9))
  return row


@pytest.mark.parametrize("full,rf,lin,want,why", [
    (_pair(1e-6), _pair(1.0), _pair(1.0), "holds", ""),
    (_pair(1e-6), _pair(1e-6), _pair(1.0), "fails", "a lazy twin learned it"),
    (_pair(0.5, random_features=(0.1, 0.01)), _pair(0.4), _pair(1.0), "fails",
     "does not beat its lazy twin(s) by 3 s.e.: random_features"),
    (_pair(0.5), _pair(1.0), _pair(1.0), "inconclusive", "above ε"),
    (_pair(2e-5, se=1e-5), _pair(1.0), _pair(1.0), "inconclusive", "within resolve_z"),
    (_pair(1e-6), _pair(3e-5, se=1e-5), _pair(1.0), "inconclusive", "within resolve_z")])
def test_judge_branches(full, rf, lin, want, why):
  verdict, reason = nc.judge(full, dict(random_features=rf, linearized=lin), eps=3e-5, z=3.0)
  assert verdict == want and why in reason


def test_hardest_neuron_is_the_largest_certified_lower_bound():
  rows = [dict(j=0, best_fit_lower=0.1, best_fit_error=0.3),
          dict(j=1, best_fit_lower=0.2, best_fit_error=0.2),
          dict(j=2, best_fit_lower=0.2, best_fit_error=0.25)]
  assert nc.hardest_neuron(rows)["j"] == 2


@pytest.mark.parametrize("field,value", [("d", 1), ("widths", ()), ("num_logs", 3),
                                         ("n_test", 1000), ("neuron_eps", 0.0),
                                         ("resolve_z", -1.0), ("lr_times_r", float("inf")),
                                         ("lin_fit_samples_per_feature", 1)])
def test_validation(field, value):
  config = _cfg()
  config[field] = value
  with pytest.raises(validation.ConfigError):
    nc.validate(config)


def test_default_config_validates():
  config = _cfg("")
  nc.validate(config)
  assert config.d == 4 and config.neuron_eps == 1 / 50 and max(config.widths) == 1024


def test_smoke_run_summary_and_figure():
  config = _cfg()
  rows = experiments.run("neuron_contrast", config, jax.random.key(config.seed))
  offsets, a = nc.psi_neurons(config.d)
  assert len(rows) == len(config.widths) * config.num_seeds * len(nc.RUNS) * a
  rf = [x for x in rows if x["regime"] == "random_features"]
  assert all(x["w_move"] == 0 and x["sign_flips"] == 0 and x["lr_w"] == 0 for x in rf)
  assert all("best_fit_error" in x for x in rf)
  full = [x for x in rows if x["regime"] == "full"]
  assert all("diff_random_features" in x and "diff_linearized" in x for x in full)
  # The first layer moves wherever a sample was active (beyond a far-right kink none may be).
  assert all(x["w_move"] > 0 for x in full if abs(x["kink"]) < 1)
  r = config.widths[0]
  assert {x["lr_w"] for x in full if x["r"] == r} == {0.5 / r, 0.5 * r}
  # Paired differences are the differences of the two means on the same inputs.
  for x in full[:5]:
    twin = [y for y in rf if (y["r"], y["seed"], y["j"]) == (x["r"], x["seed"], x["j"])][0]
    assert x["diff_random_features"] == pytest.approx(
        x["error"] - twin["error"], rel=1e-9, abs=1e-12 * (x["error"] + twin["error"]))
  s = nc.summarize(config, rows)
  assert s["verdict"] in ("holds", "fails", "inconclusive")
  assert s["mean_field_verdict"] in ("holds", "fails", "inconclusive")
  assert s["threshold"] == pytest.approx(1 / 50 / a ** 2)
  for c in s["cells"]:
    mine = [x for x in rf if x["r"] == c["r"] and x["seed"] == c["seed"]]
    assert c["j"] == max(mine, key=lambda x: (x["best_fit_lower"], x["best_fit_error"]))["j"]
    assert c["lazy"]["worst"]["full"]["error"] >= c["lazy"]["full"]["error"]
    # Step 3 of the proof, across two code paths (ψ's cross moments by the Faddeeva series,
    # the neurons' by the bivariate normal): ψ's best readout is at most (Σ|a_j|√e_j)².
    assert c["rf_psi_best_fit_error"] <= c["step3_bound"] * (1 + 1e-9) + 1e-12
    assert 0 < c["rf_psi_best_fit_error"] <= c["psi_norm_sq"] * (1 + 1e-9)
  assert s["would_fail_if"] and "d = 2" in s["departures"]
  fig = nc.figure(config, rows, dict(s, experiment="neuron_contrast"))
  plt.close(fig)


def test_judge_leaves_a_neuron_without_active_test_inputs_unresolved():
  full = dict(_pair(1e-6), mc_resolved=False, test_active_expected=3.2)
  verdict, reason = nc.judge(full, dict(random_features=_pair(1.0), linearized=_pair(1.0)),
                             eps=3e-5, z=3.0)
  assert verdict == "inconclusive" and "Monte Carlo does not resolve" in reason


def test_a_diverged_full_net_fails_and_a_diverged_twin_is_beaten():
  div = dict(error=None, error_se=None, diff_random_features=None,
             diff_random_features_se=None, diff_linearized=None, diff_linearized_se=None)
  verdict, reason = nc.judge(div, dict(random_features=_pair(1.0), linearized=_pair(1.0)),
                             eps=3e-5, z=3.0)
  assert verdict == "fails" and "diverged" in reason
  verdict, _ = nc.judge(_pair(1e-6), dict(random_features=_pair(1.0),
                                          linearized=dict(error=None, error_se=None)),
                        eps=3e-5, z=3.0)
  assert verdict == "holds"
