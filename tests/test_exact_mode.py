"""Exact mode as an open record: quadrature against closed forms (erf, ReLU) and Monte Carlo;
the README's map and a new activation through every Section 4 experiment; x64 enforced."""
import math
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import erf
from numpy.testing import assert_allclose
from scipy import integrate
from scipy import stats

from rfjax import activations
from rfjax import api
from rfjax import experiments
from rfjax import features
from rfjax import gaussian
from rfjax import psi
from rfjax import targets
from rfjax import testing

ROOT = pathlib.Path(__file__).resolve().parent.parent
ERF = activations.Activation("erf_test", erf, lipschitz=2 / math.sqrt(math.pi), sigma0=0.0,
                             taylor=None, gaussian=activations.GaussianRules())
# ReLU without its closed forms: everything by quadrature at its declared kink.
RELU_QUAD = activations.get("relu")._replace(
    name="relu_quadrature", gaussian=activations.GaussianRules(kinks=(0.0,)))
RELU = activations.get("relu")


# ----------------------------------------------------------------------------------------------
# Quadrature against closed forms.


def test_erf_quadrature_vs_closed_forms():
  """E erf(sZ + b) = erf(b/√(1+2s²)); E[Z erf(sZ + b)] = 2s e^{−b²/(1+2s²)}/√(π(1+2s²));
  E erf(aU) erf(cV) = (2/π) asin(2acρ/√((1+2a²)(1+2c²)))."""
  s, b = np.array([0.5, 1.0, 3.0]), np.array([0.0, 0.4, -1.3])
  v = 1 + 2 * s * s
  assert_allclose(gaussian.act_mean(ERF, s, b), erf(b / np.sqrt(v)), atol=1e-15)
  assert_allclose(gaussian.act_stein(ERF, s, b),
                  2 * s / np.sqrt(np.pi * v) * np.exp(-b * b / v), atol=1e-15)
  a, c = np.array([0.5, 1.0, 2.0]), np.array([1.5, 1.0, 0.7])
  rho = np.array([0.3, -0.9, 0.999999])
  want = 2 / np.pi * np.arcsin(2 * a * c * rho / np.sqrt((1 + 2 * a * a) * (1 + 2 * c * c)))
  assert_allclose(gaussian.act_cross(ERF, a, 0.0, ERF, c, 0.0, rho), want, atol=1e-14)


def test_erf_second_moment_vs_scipy():
  for s, b in ((0.7, 0.3), (2.0, -1.0)):
    want = integrate.quad(lambda z: math.erf(s * z + b) ** 2 * stats.norm.pdf(z), -40, 40,
                          epsabs=1e-15, limit=200)[0]
    assert abs(float(gaussian.act_second(ERF, s, b)) - want) < 1e-13


def test_relu_by_quadrature_equals_closed_forms():
  s, b = np.array([0.5, 1.0, 3.0]), np.array([0.0, 0.4, -1.3])
  for fn in (gaussian.act_mean, gaussian.act_second, gaussian.act_stein):
    assert_allclose(fn(RELU_QUAD, s, b), fn(RELU, s, b), rtol=1e-13, atol=1e-16)
  rho = np.array([0.3, -0.9, 0.999999])
  assert_allclose(gaussian.act_cross(RELU_QUAD, s, b, RELU_QUAD, s[::-1], -b, rho),
                  gaussian.act_cross(RELU, s, b, RELU, s[::-1], -b, rho), rtol=1e-12,
                  atol=1e-16)


@pytest.mark.parametrize("d", [3, 8])
def test_psi_correlation_by_quadrature_vs_closed_form(d):
  """The quadrature ψ-correlation of ReLU against the Faddeeva closed form: absolute error at
  most api.QUADRATURE_ATOL / 2 at every ρ, including |ρ| near 1."""
  pp = psi.psi_params(d)
  rho = np.array([0.2, 0.6, 0.95, -0.9999])
  quad = np.asarray(psi.ridge_correlation(1.0, 0.3, rho, pp.R, pp.m, RELU_QUAD))
  closed = np.asarray(psi.ridge_correlation(1.0, 0.3, rho, pp.R, pp.m, RELU))
  assert np.max(np.abs(quad - closed)) < api.QUADRATURE_ATOL / 2


def test_erf_cross_and_psi_vs_monte_carlo():
  """Biased erf features (no closed form) against Monte Carlo: Gram, cross with a ReLU neuron,
  ψ-correlation, within 5 standard errors."""
  d, r, n = 3, 3, 2**20
  k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
  w_dr = jax.random.normal(k1, (d, r), jnp.float64)
  b_r = jax.random.normal(k2, (r,), jnp.float64)
  form = features.RidgeForm(w_dr, b_r, ERF)
  x = jax.random.normal(k3, (n, d), jnp.float64)
  phi = np.asarray(erf(x @ w_dr + b_r[None, :]))
  pp = psi.psi_params(d)
  w_star = np.array([0.6, -0.3, 0.74]); w_star *= pp.R / np.linalg.norm(w_star)
  y_relu = np.maximum(np.asarray(x) @ (w_star / pp.R) - 0.2, 0)
  y_psi = np.asarray(psi.psi(x @ w_star, pp.m))
  checks = [
      (gaussian.ridge_gram(form), phi[:, :, None] * phi[:, None, :]),
      (gaussian.ridge_cross(form, w_star / pp.R, -0.2, "relu"), phi * y_relu[:, None]),
      (psi.psi_target_cross(form, w_star, pp.m, pp.R), phi * y_psi[:, None]),
  ]
  for exact, prod in checks:
    se = prod.std(0) / math.sqrt(n)
    assert np.all(np.abs(np.asarray(exact) - prod.mean(0)) < 5 * se + 1e-12)


def test_step_closed_forms_vs_quadrature():
  step = activations.get("step")
  quad = step._replace(gaussian=activations.GaussianRules(kinks=(0.0,)))
  s, b = np.array([0.5, 2.0]), np.array([0.3, -1.0])
  for fn in (gaussian.act_mean, gaussian.act_second, gaussian.act_stein):
    assert_allclose(fn(step, s, b), fn(quad, s, b), atol=1e-14)
  assert_allclose(gaussian.act_cross(step, s, b, step, s, -b, np.array([0.4, -0.7])),
                  gaussian.act_cross(quad, s, b, quad, s, -b, np.array([0.4, -0.7])),
                  atol=1e-13)


def test_records_dispatch_not_names():
  """A record registered under any name is used through its rules: a renamed ReLU is ReLU."""
  renamed = RELU._replace(name="not_relu")
  w = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5)))
  form, form2 = features.RidgeForm(w, jnp.zeros(5), renamed), features.RidgeForm(w, jnp.zeros(5),
                                                                                 "relu")
  assert_allclose(gaussian.ridge_gram(form), gaussian.ridge_gram(form2), rtol=0)
  assert gaussian.exact_method(RELU) == "closed_form"
  assert gaussian.exact_method(ERF) == "quadrature"
  with pytest.raises(ValueError, match="'exp' has no exact mode"):
    gaussian.ridge_gram(features.RidgeForm(w, jnp.zeros(5), "exp"))


# ----------------------------------------------------------------------------------------------
# Existing exact-mode numbers are unchanged: the record path against an independent route.


def test_relu_gram_unchanged_vs_scipy_bvn():
  """The relu record's Gram entries against E[X_+ Y_+] from scipy's bivariate normal CDF and
  pdf (an independent formula: Rosenbaum's moments of the truncated bivariate normal)."""
  rng = np.random.default_rng(5)
  w = rng.normal(size=(3, 6)); b = rng.normal(size=6)
  g = np.asarray(gaussian.ridge_gram(features.RidgeForm(jnp.asarray(w), jnp.asarray(b), "relu")))
  s = np.linalg.norm(w, axis=0)
  for i in range(6):
    for j in range(6):
      rho = np.clip(w[:, i] @ w[:, j] / (s[i] * s[j]), -1, 1)
      h, k = b[i] / s[i], b[j] / s[j]
      if 1 - abs(rho) < 1e-9:
        want = (h * h + 1) * stats.norm.cdf(h) + h * stats.norm.pdf(h)   # E[(U + h)_+²]
      else:
        q = math.sqrt(1 - rho * rho)
        p2 = stats.multivariate_normal(cov=[[1, rho], [rho, 1]]).cdf([h, k])
        phi2 = math.exp(-(h * h - 2 * rho * h * k + k * k) / (2 * q * q)) / (2 * math.pi * q)
        want = ((h * k + rho) * p2 + h * stats.norm.pdf(k) * stats.norm.cdf((h - rho * k) / q)
                + k * stats.norm.pdf(h) * stats.norm.cdf((k - rho * h) / q) + q * q * phi2)
      assert abs(g[i, j] - s[i] * s[j] * want) < 1e-7 * s[i] * s[j]


def test_psi_correlation_exact_curve_unchanged():
  """psi_correlation's exact curves (ρ-integrals) for ReLU and linear features: the record path
  against the formula written out here without the record (linear: s ρ L integrated against
  p_d with scipy), and ReLU at d = 2 against scipy's quadrature of the correlation."""
  d = 4
  pp = psi.psi_params(d)
  L = psi.linear_correlation(pp.R, pp.m)
  dens = lambda r: (1 - r * r) ** ((d - 3) / 2) / math.exp(
      math.lgamma(0.5) + math.lgamma((d - 1) / 2) - math.lgamma(d / 2))
  want = integrate.quad(lambda r: abs(r * L) * dens(r), -1, 1, epsabs=1e-15)[0]
  got = float(psi.mean_abs_correlation(1.0, 0.0, d, pp.R, pp.m, "linear"))
  assert got == pytest.approx(want, rel=1e-9)
  # ReLU, d = 2: F(ρ) by brute-force 2-D quadrature of E[[V + b]_+ ψ(RU)] at a few ρ.
  pp2 = psi.psi_params(2)
  for rho in (0.3, -0.8):
    q = math.sqrt(1 - rho * rho)
    inner = lambda u: integrate.quad(
        lambda z: max(rho * u + q * z + 0.3, 0.0) * stats.norm.pdf(z), -12, 12,
        points=[(-0.3 - rho * u) / q], limit=200)[0]
    kinks = [k / pp2.R for k in range(-pp2.A, pp2.A + 1, 2)]
    want = integrate.quad(lambda u: float(psi.psi(pp2.R * u, pp2.m)) * inner(u)
                          * stats.norm.pdf(u), -12, 12, points=kinks, limit=400)[0]
    got = float(psi.ridge_correlation(1.0, 0.3, rho, pp2.R, pp2.m, "relu"))
    assert got == pytest.approx(want, rel=1e-7, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# x64 off: every exact-mode entry point refuses, in one line naming the fix.


def test_x64_off_every_exact_entry_point_raises_one_line():
  code = r"""
import jax, jax.numpy as jnp, numpy as np
from rfjax import api, features, gaussian, psi, targets, testing
w = jnp.ones((2, 3)); form = features.RidgeForm(w, jnp.zeros(3), "relu")
t = targets.relu_neuron(jnp.ones(2), 0.0)
calls = {
  "ridge_gram": lambda: gaussian.ridge_gram(form),
  "ridge_mean": lambda: gaussian.ridge_mean(form),
  "ridge_cross": lambda: gaussian.ridge_cross(form, jnp.ones(2), 0.0, "relu"),
  "ridge_target_second": lambda: gaussian.ridge_target_second(jnp.ones(2), 0.0, "relu"),
  "ridge_target_mean": lambda: gaussian.ridge_target_mean(jnp.ones(2), 0.0, "relu"),
  "ridge_correlation": lambda: psi.ridge_correlation(1.0, 0.0, 0.5, 20.0, 100),
  "mean_abs_correlation": lambda: psi.mean_abs_correlation(1.0, 0.0, 20, 20.0, 100),
  "psi_target_cross": lambda: psi.psi_target_cross(form, jnp.ones(2), 1, 2.0),
  "coupling_correlation": lambda: psi.coupling_correlation(jnp.ones(2), jnp.arange(2), 1, 2.0),
  "coupling_mean_abs": lambda: psi.coupling_mean_abs_correlation(3, 3.0, 3),
  "target_cross": lambda: targets.target_cross(form, t),
  "target_mean": lambda: targets.target_mean(t),
  "target_second_moment": lambda: targets.target_second_moment(t),
  "api.psi_correlation": lambda: api.psi_correlation("relu_sphere", 3, key=jax.random.key(0)),
  "api.fit_curve": lambda: api.fit_curve("relu_biased", 2, (8,), (10.0,), key=jax.random.key(0)),
  "api.kernel_check": lambda: api.kernel_check("relu_gauss", 2, key=jax.random.key(0)),
  "api.moments": lambda: api.moments("relu_biased", None, t, d=2, key=jax.random.key(0)),
  "check_feature_map": lambda: testing.check_feature_map("relu_sphere"),
}
for name, call in calls.items():
  try:
    call()
  except RuntimeError as e:
    msg = str(e)
    assert "\n" not in msg and "jax_enable_x64" in msg, (name, msg)
    print("OK", name)
  else:
    print("NO ERROR", name)
"""
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_ENABLE_X64="0")
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  lines = out.stdout.split("\n")
  assert not [l for l in lines if l.startswith("NO ERROR")], out.stdout
  assert len([l for l in lines if l.startswith("OK")]) == 18


def test_importing_rfjax_sets_no_matplotlib_backend():
  code = ("import matplotlib; import rfjax, rfjax.runner, rfjax.api, rfjax.testing; "
          "print(matplotlib.rcParams._get_backend_or_none())")
  env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
  env["PYTHONPATH"] = str(ROOT)
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().splitlines()[-1] == "None"


# ----------------------------------------------------------------------------------------------
# The README's example map and a map with a new activation, through every Section 4 experiment.


def _erf_sphere():
  """erf(<w,x> + b), w on the unit sphere, b ~ N(0, 1): a ridge map of a new activation."""

  def init(key, d, r):
    d, r = features.check_dims(d, r)
    k_w, k_b = jax.random.split(key)
    g = jax.random.normal(k_w, (d, r))
    return {"w_dr": g / jnp.linalg.norm(g, axis=0, keepdims=True),
            "b_r": jax.random.normal(k_b, (r,))}

  def apply(params, x_nd):
    return erf(x_nd @ params["w_dr"] + params["b_r"][None, :])

  return features.FeatureMap(init, apply, ridge=lambda p: features.RidgeForm(
      p["w_dr"], p["b_r"], "erf_open"))


@pytest.fixture
def user_maps():
  """Registers the README's example map (as written there) and erf_sphere (a new activation,
  exact mode by quadrature); unregisters them after."""
  blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
  example = next(b for b in blocks if "features.register(" in b)
  readme_name = re.search(r'features.register\("(\w+)"', example).group(1)
  exec(compile(example, "README.md", "exec"), {})
  activations.register("erf_open", ERF._replace(name="erf_open"))
  features.register("erf_sphere", _erf_sphere())
  try:
    yield readme_name, "erf_sphere"
  finally:
    features.FEATURE_MAPS.unregister(readme_name)
    features.FEATURE_MAPS.unregister("erf_sphere")
    activations.ACTIVATIONS.unregister("erf_open")


def _smoke(name, **over):
  from conftest import load_config  # pylint: disable=import-outside-toplevel
  c = load_config(name, "smoke")
  c.update(over)
  return c


def test_user_maps_conform_and_modes(user_maps):
  readme, erf_map = user_maps
  testing.check_feature_map(readme)
  testing.check_feature_map(erf_map)
  assert api.feature_mode(readme) == ("sample", "monte_carlo")
  assert api.feature_mode(erf_map) == ("exact", "quadrature")


@pytest.mark.slow
def test_user_maps_in_every_section4_experiment(user_maps):
  readme, erf_map = user_maps
  key = jax.random.key(0)
  # psi_correlation: the README map by Monte Carlo, erf in exact mode (quadrature).
  c = _smoke("psi_correlation", ds=(2, 3), exact_features=(erf_map,), mc_ds=(2,),
             mc_features=(readme, erf_map), num_seeds=2)
  experiments.get("psi_correlation").validate(c)
  rows = experiments.run("psi_correlation", c, key)
  ex = [r for r in rows if r["feature"] == erf_map and r["mode"] == "exact"]
  assert ex and all(r["method"] == "quadrature" and r["mean_abs_corr"] > r["precision"]
                    for r in ex)
  assert {r["mode"] for r in rows if r["feature"] == readme} == {"monte_carlo"}
  summary = experiments.get("psi_correlation").summarize(c, rows)
  assert summary["verdict"] in ("holds", "fails", "inconclusive")
  # relu_neuron_rf: erf exact (quadrature Gram), the README map in sample mode.
  c = _smoke("relu_neuron_rf", features=(erf_map, readme), ds=(2, 3), rs=(24,), rate_r=24,
             fixed_r=24, sample_ds=(2,), sample_rs=(12,), num_w_star=2,
             verdict_features=(erf_map,))
  experiments.get("relu_neuron_rf").validate(c)
  rows = experiments.run("relu_neuron_rf", c, key)
  assert {(r["feature"], r["mode"], r["method"]) for r in rows} == {
      (erf_map, "exact", "quadrature"), (readme, "sample", "monte_carlo")}
  assert all(r["precision"] is not None for r in rows)
  assert experiments.get("relu_neuron_rf").summarize(c, rows)["verdict"]
  # neuron_gd: the random-features side with each map.
  for f, mode in ((erf_map, "exact"), (readme, "sample")):
    c = _smoke("neuron_gd", rf_feature=f, ds=(2, 8), num_seeds=2, steps=50, rf_r=16,
               rf_mc_n=2**12, rf_mc_chunk=2**11)
    experiments.get("neuron_gd").validate(c)
    rows = experiments.run("neuron_gd", c, key)
    rf = [r for r in rows if r["regime"] == "random_features"]
    assert rf and {r["mode"] for r in rf} == {mode}
    s = experiments.get("neuron_gd").summarize(c, rows)
    if mode == "sample":
      assert s["rf_verdict"] == "inconclusive"
  # linear_rf: both maps beside the linear verdict family.
  c = _smoke("linear_rf", other_features=(readme, erf_map), other_seeds=3,
             other_mc_n=2**12, other_mc_chunk=2**11)
  experiments.get("linear_rf").validate(c)
  rows = experiments.run("linear_rf", c, key)
  s = experiments.get("linear_rf").summarize(c, rows)
  modes = {(o["feature"], o["mode"]) for o in s["other_features"]}
  assert modes == {(readme, "sample"), (erf_map, "exact")}
  assert all(0 <= o["mean_error"] <= 1 + 1e-9 for o in s["other_features"])


def test_api_calls(user_maps):
  readme, erf_map = user_maps
  key = jax.random.key(1)
  ex = api.psi_correlation("linear_sphere", 3, key=key, num_features=2)
  assert ex.mode == "exact" and ex.method == "closed_form" and ex.resolved
  mc = api.psi_correlation(readme, 2, key=key, num_features=2, num_w_star=4, n=2**12)
  assert mc.mode == "sample" and mc.stderr > 0
  curve = api.fit_curve("relu_biased", 2, (8, 16), (1.0, 1e3), key=key)
  assert len(curve) == 4 and all(r["relative_lower"] <= r["relative_error"] + 1e-12
                                 for r in curve)
  # More budget never hurts: the error falls with r·B (certified within the gaps).
  for r in (8, 16):
    lo, hi = [c for c in curve if c["r"] == r]
    assert hi["relative_error"] <= lo["relative_error"] + 1e-9
  k = api.kernel_check(readme, 3, key=key, num_features=5000)
  assert k["max_z"] < 5
