"""integral_rep: smoke run, verdict, the per-cell numbers against direct computation."""
import copy
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import experiments
from rfjax import legendre
from rfjax import plots
from rfjax import validation
from rfjax.experiments import integral_rep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(variant="smoke"):
  spec = importlib.util.spec_from_file_location("c", os.path.join(ROOT, "configs/integral_rep.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(variant)


@pytest.fixture(scope="module")
def runs():
  """variant -> rows of its run with key(0), computed once for this module."""
  cache = {}

  def get(variant):
    if variant not in cache:
      cache[variant] = experiments.run("integral_rep", _config(variant), jax.random.key(0))
    return copy.deepcopy(cache[variant])
  return get


def test_smoke_verdict_and_parts(runs):
  config = _config()
  rows = runs("smoke")
  summary = integral_rep.summarize(config, rows)
  assert summary["verdict"] in ("holds", "inconclusive", "fails")
  assert summary["would_fail_if"] and summary["departures"]
  assert "truncation at K" in summary["claim"] and "Müntz" in summary["claim"]
  assert summary["poly_residual_max"] <= 1e-10 and summary["parts"]["exact"] == "holds"
  assert {"d", "k", "sigma", "sup_g", "g_abs_sum", "g_l2", "bound_k", "residual", "K",
          "seed"} <= set(rows[0])
  for r in rows:
    assert r["g_l2"] <= r["sup_g"] * (1 + 1e-9) and r["sup_g"] <= r["g_abs_sum"] * (1 + 1e-9)
    assert r["bound_k"] == r["bound_k_binomial"] <= r["bound_k_power"]
    if r["sigma"] != "poly3":
      assert r["residual"] <= r["residual_bound"]          # the certificate is an upper bound
  # the cells of one (σ, d, k) that differ in K share their polynomials
  alpha = {}
  for r in rows:
    alpha.setdefault((r["sigma"], r["d"], r["k"], r["seed"]), set()).add(r["alpha_max"])
  assert all(len(v) == 1 for v in alpha.values())
  assert len({v.pop() for v in alpha.values()}) > len(alpha) // 2     # but differ by seed
  # at K = k the triangle inequality gives Σ|b_J| ≤ C_P(k)
  assert all(r["g_abs_sum"] <= r["bound_k"] for r in rows if r["K"] == r["k"])
  s = integral_rep.summarize(config, rows)
  assert s == summary                                       # deterministic


def _rows_with(rows, pred, **change):
  return [dict(r, **change) if pred(r) else r for r in rows]


def test_summary_parts_can_fail(runs):
  config = _config()
  rows = runs("smoke")
  first = rows[0]
  assert first["sigma"] == "poly3"
  # (A) a residual above poly_tol fails
  s = integral_rep.summarize(config, _rows_with(rows, lambda r: r is first, residual=1e-6))
  assert s["verdict"] == "fails" and s["parts"]["exact"] == "fails"
  assert any("poly_tol = 1e-10" in x for x in s["verdict_reasons"])
  # (B) ‖ĝ‖₂ above C_P(k): no g meets the bound; Σ|b_J| above it with ‖ĝ‖₂ below: undecided
  big = dict(g_abs_sum=10 * first["bound_k"], g_l2=2 * first["bound_k"])
  s = integral_rep.summarize(config, _rows_with(rows, lambda r: r is first, **big))
  assert s["parts"]["bound"] == "fails" and s["verdict"] == "fails"
  mid = dict(g_abs_sum=10 * first["bound_k"], g_l2=0.5 * first["bound_k"],
             sup_g=2 * first["bound_k"])
  s = integral_rep.summarize(config, _rows_with(rows, lambda r: r is first, **mid))
  assert s["parts"]["bound"] == "inconclusive"
  assert any("construction misses the bound" in x for x in s["verdict_reasons"])
  # (C) analytic σ: every K with a measured residual above trunc_tol fails
  s = integral_rep.summarize(config, _rows_with(rows, lambda r: r["sigma"] == "exp",
                                                residual=1.0, residual_bound=2.0))
  assert s["parts"]["truncation"] == "fails"
  # a K with certified residual and Σ|b_J| within C_P(k) holds
  s = integral_rep.summarize(config, _rows_with(
      rows, lambda r: r["sigma"] != "poly3", residual_bound=0.0, g_abs_sum=0.0))
  assert s["parts"]["truncation"] == "holds"
  # each part without data is inconclusive
  s = integral_rep.summarize(config, [r for r in rows if r["sigma"] == "poly3"])
  assert s["parts"]["truncation"] == "inconclusive" and s["verdict"] != "holds"
  assert any("no analytic σ" in x for x in s["verdict_reasons"])
  s = integral_rep.summarize(config, [r for r in rows if r["sigma"] != "poly3"])
  assert s["parts"]["exact"] == "inconclusive" and s["parts"]["bound"] == "inconclusive"


def test_unsupported_monomials_are_a_visible_failure(runs):
  """σ = tanh3 = z − z³/3 lacks a_0 and a_2: a P with a constant or a degree-2 monomial has
  no representation; the run keeps those P and the verdict fails, naming them."""
  config = _config("unsupported")
  integral_rep.validate(config)
  rows = runs("unsupported")
  assert rows and all(r["num_unsupported"] > 0 for r in rows)      # 4 of ≤ 6 monomials
  for r in rows:
    # ĝ represents the supported part exactly, so the residual is P's unsupported part
    np.testing.assert_allclose(r["residual"], r["unsupported_sup"], rtol=1e-9, atol=1e-13)
    assert r["residual"] > 1e-3
  s = integral_rep.summarize(config, rows)
  assert s["verdict"] == "fails" and s["num_unrepresentable"] == len(rows)
  assert any("no representation exists" in x and "[0, 2]" in x for x in s["verdict_reasons"])
  # the unsupported part, evaluated directly, is what the residual reports
  d, k = 2, 1
  group = integral_rep._group("tanh3", d, 2, 3)
  inputs = integral_rep._cell_inputs("tanh3", d, k, 3, group, "all")
  alpha = np.asarray(integral_rep.random_alpha(jax.random.key(5), inputs["mask_s"], 4))
  unsup = alpha * (1 - inputs["supported_s"])
  assert np.count_nonzero(unsup) == 1 and group.i_sd[np.flatnonzero(unsup)[0]].sum() == 0
  x = np.array([[0.6, -0.8], [0.1, 0.2]])
  out = integral_rep._one_seed(jax.random.key(6), jax.random.key(5), jnp.asarray(x), jax.tree.map(
      jnp.asarray, inputs), sigma="tanh3", d=d, k_max=2, K_max=3, num_terms=4, num_sup=256,
      chunk=2)
  np.testing.assert_allclose(out["residual"], abs(unsup[np.flatnonzero(unsup)[0]]), rtol=1e-12)


def test_k_form_bound_closed_form_p_equals_x1():
  """P = x_1 over poly3 (a_1 = 1): ĝ = √d[3v_1 − 10.5 P_3(v_1) − 7.5 v_1 Σ_{j>1} P_2(v_j)],
  Σ|b_J| = √d(6 + 7.5d), ‖ĝ‖₂² = d(15 + 3.75d), sup|ĝ| ≥ 7.5 d√d (at a vertex). Against
  C_P(1) = 3(1+√2)(d+1)√d the construction's sup is above the bound exactly when d ≥ 29,
  while ‖ĝ‖₂ stays far below it: undecided, not failed."""
  for d in (3, 8, 30):
    poly = {tuple(1 if i == 0 else 0 for i in range(d)): 1.0}
    cons, b = legendre.construct(poly, "poly3", d)
    b = jnp.asarray(b)
    np.testing.assert_allclose(float(jnp.sum(jnp.abs(b))), np.sqrt(d) * (6 + 7.5 * d),
                               rtol=1e-12)
    np.testing.assert_allclose(float(legendre.g_l2(cons.j_td, b)),
                               np.sqrt(d * (15 + 3.75 * d)), rtol=1e-12)
    vert = jnp.ones((1, d))
    np.testing.assert_allclose(abs(float(legendre.g_hat(cons.j_td, b, vert)[0])),
                               7.5 * d * np.sqrt(d), rtol=1e-12)
    bound = legendre.bound_g(1.0, 1.0, d, 1)
    np.testing.assert_allclose(bound, 3 * (1 + np.sqrt(2)) * (d + 1) * np.sqrt(d), rtol=1e-14)
    row = dict(sigma="poly3", g_abs_sum=float(jnp.sum(jnp.abs(b))),
               g_l2=float(legendre.g_l2(cons.j_td, b)), bound_k=bound)
    assert integral_rep.bound_outcome(row) == ("holds" if d < 8 else "inconclusive")
    assert (7.5 * d * np.sqrt(d) > bound) == (d >= 29)


def test_random_alpha_is_bounded_sparse_and_masked():
  mask = np.arange(20) < 12
  alphas = jax.vmap(lambda k: integral_rep.random_alpha(k, mask, 4))(
      jax.random.split(jax.random.key(0), 50))
  alphas = np.asarray(alphas)
  np.testing.assert_allclose(np.abs(alphas).sum(1), 1.0)
  assert np.all((alphas != 0).sum(1) == 4)
  assert np.all(alphas[:, ~mask] == 0)
  assert len({tuple(np.flatnonzero(a)) for a in alphas}) > 20       # supports vary by seed
  few = integral_rep.random_alpha(jax.random.key(1), np.arange(6) < 2, 4)
  assert np.count_nonzero(few) == 2 and np.all(np.asarray(few)[2:] == 0)


@pytest.mark.parametrize("sigma,k,K", [("exp", 2, 4), ("poly3", 1, 3), ("exp", 1, 2)])
def test_padded_cell_matches_its_own_construction(sigma, k, K):
  """A cell written over the group's larger monomial and product sets (k_max = 3, K_max = 6
  for exp) gives the b_J, sup and residual of prepare(σ, d, k, K) on the same α."""
  d = 3
  k_max, K_max = (3, 6) if sigma == "exp" else (3, 3)
  group = integral_rep._group(sigma, d, k_max, K_max)
  inputs = integral_rep._cell_inputs(sigma, d, k, K, group)
  cons = legendre.prepare(sigma, d, k, K)
  assert np.all(group.supported_s)                           # exp and poly3 support every n
  # the cell's candidates are the group's masked ones, in the same order
  np.testing.assert_array_equal(group.i_sd[inputs["mask_s"]], cons.i_sd)
  k_alpha, k_sup = jax.random.split(jax.random.key(2))      # the seed program's two keys
  alpha = np.asarray(integral_rep.random_alpha(k_alpha, inputs["mask_s"], 3))
  b_group = inputs["map_ts"] @ alpha
  b_cell = cons.map_ts @ alpha[inputs["mask_s"]]
  row = {tuple(j): t for t, j in enumerate(group.j_td.tolist())}
  idx = [row[tuple(j)] for j in cons.j_td.tolist()]
  np.testing.assert_allclose(b_group[idx], b_cell, rtol=1e-13, atol=1e-13)
  assert np.all(np.delete(b_group, idx) == 0)
  # the seed program's numbers against the cell's own construction
  x = jax.random.normal(jax.random.key(3), (64, d), jnp.float64) / 2.0
  out = integral_rep._one_seed(
      k_sup, k_alpha, x, jax.tree.map(jnp.asarray, inputs), sigma=sigma, d=d,
      k_max=k_max, K_max=K_max, num_terms=3, num_sup=512, chunk=32)
  np.testing.assert_allclose(out["g_abs_sum"], np.abs(b_cell).sum(), rtol=1e-13)
  fx = legendre.integral(sigma, cons.j_td, jnp.asarray(b_cell), x)
  px = legendre.polynomial_eval(cons.i_sd, jnp.asarray(alpha[inputs["mask_s"]]), x)
  np.testing.assert_allclose(out["residual"], np.abs(np.asarray(fx - px)).max(),
                             rtol=1e-9, atol=1e-13)
  sup = legendre.sup_g_estimate(k_sup, cons.j_td, jnp.asarray(b_cell), num=512, chunk=32)
  np.testing.assert_allclose(out["sup_g"], sup, rtol=1e-12)


def test_cell_numbers_bounded():
  out = integral_rep._cell_numbers(jax.random.key(3), jax.random.key(4), sigma="exp", d=3, k=2, K=4, k_max=2,
                                   K_max=4, num_seeds=2, num_terms=3, num_sup=256,
                                   num_test=256, chunk=128)
  assert np.all(out["residual"] > 1e-8) and np.all(out["residual"] < 0.1)
  assert np.all(out["residual"] <= out["residual_bound"])
  assert np.all(out["p_sup"] <= 1 + 1e-12)
  assert np.all(out["g_l2"] <= out["sup_g"]) and np.all(out["sup_g"] <= out["g_abs_sum"] * (1 + 1e-12))
  assert np.all(out["unsupported_sup"] == 0) and np.all(out["num_unsupported"] == 0)
  # C_P(k) from max|α_I| (A_2 = 2 for exp): the binomial form below the power form
  np.testing.assert_allclose(out["bound_k"], out["alpha_max"] * 2 * (3 + 3 * np.sqrt(2))**2
                             * 10 * 3, rtol=1e-12)
  assert np.all(out["bound_k_binomial"] < out["bound_k_power"])


def test_validation_errors():
  config = _config()
  config.sigmas = ("relu",)
  with pytest.raises(validation.ConfigError, match="not analytic"):
    integral_rep.validate(config)
  config = _config()
  config.sigmas = ("tanh",)
  with pytest.raises(validation.ConfigError, match="no exact integral"):
    integral_rep.validate(config)
  config = _config()
  config.truncation_degrees = (1,)
  with pytest.raises(validation.ConfigError, match="truncation_degrees"):
    integral_rep.validate(config)
  # a K below some k is allowed; its cells with k > K are left out
  config = _config("all_K")
  integral_rep.validate(config)
  cells = integral_rep.cells(config)
  assert all(c["K"] >= c["k"] for c in cells)
  assert {(c["k"], c["K"]) for c in cells if c["sigma"] == "exp"} == {
      (k, K) for k in (1, 2, 3) for K in range(1, 8) if K >= k}
  config = _config()
  config.num_test = 100
  with pytest.raises(validation.ConfigError, match="num_test"):
    integral_rep.validate(config)
  for field, value in [("trunc_tol", 0.0), ("monomials", "some"), ("bound_form", "k")]:
    config = _config()
    config[field] = value
    with pytest.raises(validation.ConfigError, match=field):
      integral_rep.validate(config)


def test_default_config_grid():
  config = _config("")
  integral_rep.validate(config)
  assert set(config.ds) == set(range(2, 9)) and set(config.ks) == {1, 2, 3}
  assert config.monomials == "supported" and config.bound_form == "binomial"
  assert config.trunc_tol == 5e-3 and config.poly_tol == 1e-10
  with pytest.raises(ValueError):
    _config("nope")


def test_figure_draws_from_smoke_and_unsupported_output(tmp_path, runs):
  for variant in ("smoke", "unsupported"):
    config = _config(variant)
    rows = runs(variant)
    summary = dict(integral_rep.summarize(config, rows), experiment="integral_rep")
    path = tmp_path / f"{variant}.png"
    plots.save("integral_rep", config, rows, summary, str(path))
    assert path.stat().st_size > 10_000
