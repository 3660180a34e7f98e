"""Tests for rfjax.solvers against numpy / scipy references and exact-vs-sample moments."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from rfjax import distributions
from rfjax import features
from rfjax import gaussian
from rfjax import solvers
from rfjax import targets


def _relu_params(key, d, r):
  """Local ridge features relu(x @ w_dr + b_r) (independent of features.py)."""
  k_w, k_b = jax.random.split(key)
  return (jax.random.normal(k_w, (d, r), jnp.float64) / np.sqrt(d),
          jax.random.normal(k_b, (r,), jnp.float64))


def _relu_apply(params, x_nd):
  w_dr, b_r = params
  return jax.nn.relu(x_nd @ w_dr.astype(x_nd.dtype) + b_r.astype(x_nd.dtype)[None, :])


def _target(x_nd):
  return jnp.sin(x_nd[:, 0]) + 0.5 * x_nd[:, 1] ** 2 + 0.3


def _numpy_moments(phi_nr, y_n):
  """Moments from a design matrix, in numpy float64."""
  phi_nr, y_n = np.asarray(phi_nr, np.float64), np.asarray(y_n, np.float64)
  n = phi_nr.shape[0]
  return solvers.Moments(G_rr=phi_nr.T @ phi_nr / n, b_r=phi_nr.T @ y_n / n,
                         mean_r=phi_nr.mean(0), y_mean=y_n.mean(), yy=np.mean(y_n**2))


def _chunk_inputs(key, n, chunk, d, dtype):
  """The inputs sample_moments draws, rebuilt chunk by chunk from the same keys."""
  sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
  return jnp.concatenate([distributions.gaussian(jax.random.fold_in(key, i), s, d, dtype=dtype)
                          for i, s in enumerate(sizes)])


def _design_problem(seed, n=400, r=20, d=5, dup=False):
  """A random design (phi_nr, y_n) and its numpy moments."""
  k_p, k_x = jax.random.split(jax.random.key(seed))
  params = _relu_params(k_p, d, r)
  x_nd = jax.random.normal(k_x, (n, d), jnp.float64)
  phi_nr = np.asarray(_relu_apply(params, x_nd))
  if dup:
    phi_nr = np.concatenate([phi_nr, phi_nr[:, :3]], axis=1)
  y_n = np.asarray(_target(x_nd))
  return phi_nr, y_n, _numpy_moments(phi_nr, y_n)


# --------------------------------------------------------------------------- sample mode


@pytest.mark.parametrize("n,chunk", [(1000, 128)])
def test_sample_moments_match_numpy(n, chunk):
  d, r = 4, 12
  params = _relu_params(jax.random.key(0), d, r)
  key = jax.random.key(1)
  m = solvers.sample_moments(_relu_apply, params, _target, key, n=n, chunk=chunk, d=d,
                             dtype=jnp.float64)
  x_nd = _chunk_inputs(key, n, min(chunk, n), d, jnp.float64)
  ref = _numpy_moments(_relu_apply(params, x_nd), _target(x_nd))
  for got, want in zip(m, ref):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
  assert m.G_rr.dtype == jnp.float64


@pytest.mark.parametrize("r,panel", [(12, None), (37, 8), (40, 10)])
def test_data_moments_match_numpy(r, panel, monkeypatch):
  """Given data, chunked (with a remainder), Gram built from uneven / even block panels."""
  if panel is not None:
    monkeypatch.setattr(solvers, "_PANEL", panel)
  d, n, chunk = 4, 1003, 128
  k_p, k_x = jax.random.split(jax.random.key(8))
  params = _relu_params(k_p, d, r)
  x_nd = jax.random.normal(k_x, (n, d), jnp.float64)
  y_n = _target(x_nd)
  assert len(solvers.gram_blocks(r)) == (1 if panel is None else -(-r // panel))
  m = jax.jit(lambda p, x, y: solvers.data_moments(_relu_apply, p, x, y, chunk=chunk))(
      params, x_nd, y_n)
  ref = _numpy_moments(_relu_apply(params, x_nd), y_n)
  for got, want in zip(m, ref):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
  np.testing.assert_array_equal(m.G_rr, m.G_rr.T)


def test_data_moments_equal_sample_moments():
  """data_moments over the inputs sample_moments draws gives its moments."""
  d, r, n, chunk = 3, 20, 600, 256
  params = _relu_params(jax.random.key(9), d, r)
  key = jax.random.key(10)
  x_nd = _chunk_inputs(key, n, chunk, d, jnp.float64)
  a = solvers.sample_moments(_relu_apply, params, _target, key, n=n, chunk=chunk, d=d,
                             dtype=jnp.float64)
  b = solvers.data_moments(_relu_apply, params, x_nd, _target(x_nd), chunk=chunk)
  for got, want in zip(b, a):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_data_moments_rejects_bad_shapes():
  params = _relu_params(jax.random.key(11), 3, 4)
  with pytest.raises(ValueError, match="y_n"):
    solvers.data_moments(_relu_apply, params, jnp.zeros((10, 3)), jnp.zeros(9), chunk=4)
  with pytest.raises(ValueError, match="chunk"):
    solvers.data_moments(_relu_apply, params, jnp.zeros((10, 3)), jnp.zeros(10), chunk=0)


def test_sample_moments_float32_accumulation():
  d, r, n, chunk = 3, 8, 4096, 256
  params = _relu_params(jax.random.key(2), d, r)
  key = jax.random.key(3)
  x_nd = _chunk_inputs(key, n, chunk, d, jnp.float32)
  ref = _numpy_moments(_relu_apply(params, x_nd), _target(x_nd))  # same float32 features
  kw = dict(n=n, chunk=chunk, d=d, dtype=jnp.float32)
  m32 = solvers.sample_moments(_relu_apply, params, _target, key, **kw)
  m64 = solvers.sample_moments(_relu_apply, params, _target, key, accum_dtype=jnp.float64, **kw)
  assert m32.G_rr.dtype == jnp.float32 and m64.G_rr.dtype == jnp.float64
  for got32, got64, want in zip(m32, m64, ref):
    np.testing.assert_allclose(got64, want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-6)


def test_sample_moments_streams_without_n_by_r_buffer():
  d, r, n, chunk = 4, 128, 1 << 16, 256
  params = _relu_params(jax.random.key(4), d, r)

  def moments(params, key):
    return solvers.sample_moments(_relu_apply, params, _target, key, n=n, chunk=chunk, d=d,
                                  dtype=jnp.float64)

  compiled = jax.jit(moments).lower(params, jax.random.key(5)).compile()
  stats = compiled.memory_analysis()
  if stats is None or not hasattr(stats, "temp_size_in_bytes"):
    pytest.skip("memory_analysis unavailable on this backend")
  n_by_r = n * r * 8
  assert stats.temp_size_in_bytes < n_by_r / 16, (stats.temp_size_in_bytes, n_by_r)


def test_sample_moments_is_vmappable_over_params():
  d, r = 3, 5
  keys = jax.random.split(jax.random.key(6), 3)
  params = jax.vmap(lambda k: _relu_params(k, d, r))(keys)
  fit = lambda p: solvers.sample_moments(_relu_apply, p, _target, jax.random.key(7), n=256,
                                         chunk=64, d=d, dtype=jnp.float64)
  batched = jax.jit(jax.vmap(fit))(params)
  one = fit(jax.tree.map(lambda a: a[1], params))
  np.testing.assert_allclose(batched.G_rr[1], one.G_rr, rtol=1e-12)


# --------------------------------------------------------------------------- Gram by BLAS syrk


def _sum_bound(phi_nr, n):
  """Elementwise bound n eps |phi|^T |phi| / n on the difference of two float32 sums of n
  products (each is within about n eps/2 of the exact sum of absolute values)."""
  a = np.abs(np.asarray(phi_nr, np.float64))
  return n * float(np.finfo(np.float32).eps) * (a.T @ a) / n


@pytest.mark.parametrize("n,chunk,r,t", [(1003, 128, 37, None), (2000, 500, 300, 2),
                                         (4096, 1024, 64, None)])
def test_syrk_gram_matches_xla_dots(n, chunk, r, t):
  """The BLAS syrk path gives the XLA path's moments to float32 rounding (bound from n eps),
  for data and sampled inputs, chunks with a remainder, one or t targets."""
  d = 5
  params = tuple(a.astype(jnp.float32) for a in _relu_params(jax.random.key(20), d, r))
  target = _target if t is None else (lambda x: jnp.stack([_target(x), x[:, 2]], axis=1))
  x_nd = jax.random.normal(jax.random.key(21), (n, d), jnp.float32)
  key = jax.random.key(22)
  for name, fit in [
      ("data", lambda g: solvers.data_moments(_relu_apply, params, x_nd, _target(x_nd),
                                              chunk=chunk, gram=g)),
      ("sample", lambda g: solvers.sample_moments(_relu_apply, params, target, key, n=n,
                                                  chunk=chunk, d=d, gram=g))]:
    syrk, xla = (jax.jit(functools.partial(fit, g))() for g in ("syrk", "xla"))
    xs = x_nd if name == "data" else _chunk_inputs(key, n, chunk, d, jnp.float32)
    phi = np.asarray(_relu_apply(params, xs))
    ys = np.asarray(_target(xs) if name == "data" else target(xs), np.float64)
    bound_G = _sum_bound(phi, n)
    assert syrk.G_rr.dtype == jnp.float32
    np.testing.assert_array_equal(syrk.G_rr, syrk.G_rr.T)
    assert np.all(np.abs(np.asarray(syrk.G_rr, np.float64) - xla.G_rr) <= bound_G), name
    # and both are the float64 Gram of the same float32 features to that bound
    G64 = phi.astype(np.float64).T @ phi / n
    assert np.all(np.abs(np.asarray(syrk.G_rr, np.float64) - G64) <= bound_G), name
    y_nt = ys.reshape(n, -1)
    bound_b = float(np.finfo(np.float32).eps) * np.abs(y_nt).T @ np.abs(phi)   # [t, r]
    diff_b = np.abs(np.reshape(np.asarray(syrk.b_r, np.float64), (-1, r))
                    - np.reshape(xla.b_r, (-1, r)))
    assert np.all(diff_b <= bound_b), name
    for a, b in zip(syrk[2:], xla[2:]):
      np.testing.assert_allclose(a, b, rtol=n * float(np.finfo(np.float32).eps), atol=1e-6)


def test_syrk_gram_float64_and_vmap():
  """dsyrk for float64 sums (to n eps64 of the XLA dots), and under vmap (a batch of keys)."""
  d, r, n, chunk = 4, 50, 700, 128
  params = _relu_params(jax.random.key(23), d, r)
  keys = jax.random.split(jax.random.key(24), 3)
  fit = lambda g, k: solvers.sample_moments(_relu_apply, params, _target, k, n=n, chunk=chunk,
                                            d=d, dtype=jnp.float64, gram=g).G_rr
  syrk = jax.jit(jax.vmap(functools.partial(fit, "syrk")))(keys)
  xla = jax.jit(jax.vmap(functools.partial(fit, "xla")))(keys)
  assert syrk.dtype == jnp.float64 and syrk.shape == (3, r, r)
  np.testing.assert_allclose(syrk, xla, rtol=n * 2.3e-16, atol=1e-14)
  one = fit("syrk", keys[2])
  np.testing.assert_allclose(syrk[2], one, rtol=1e-14, atol=1e-15)


def test_gram_method_dispatch(monkeypatch):
  """auto is the XLA dots; RFJAX_GRAM and the keyword pick syrk (float32 or float64 only)."""
  monkeypatch.delenv(solvers.GRAM_ENV, raising=False)
  assert solvers.gram_method(None, jnp.float32) == "xla"
  assert solvers.gram_method("auto", jnp.float64) == "xla"
  assert solvers.gram_method("syrk", jnp.float64) == "syrk"
  monkeypatch.setenv(solvers.GRAM_ENV, "syrk")
  assert solvers.gram_method(None, jnp.float32) == "syrk"
  assert solvers.gram_method("xla", jnp.float32) == "xla"
  with pytest.raises(ValueError, match="gram"):
    solvers.gram_method("blas", jnp.float32)
  with pytest.raises(ValueError, match="float32 or float64"):
    solvers.gram_method("syrk", jnp.float16)


@pytest.mark.parametrize("gram,env", [("syrk", None), (None, "syrk")])
def test_syrk_gram_lowers_to_a_callback_only_for_cpu(gram, env, monkeypatch):
  """The host callback is in the program lowered for CPU and absent from the one lowered
  for CUDA or TPU (there the accumulator is updated by an XLA dot)."""
  monkeypatch.delenv(solvers.GRAM_ENV, raising=False)
  if env:
    monkeypatch.setenv(solvers.GRAM_ENV, env)
  d, r, n = 3, 16, 300
  params = tuple(a.astype(jnp.float32) for a in _relu_params(jax.random.key(25), d, r))
  x_nd = jnp.ones((n, d), jnp.float32)
  traced = jax.jit(lambda p, x: solvers.data_moments(_relu_apply, p, x, x[:, 0], chunk=128,
                                                      gram=gram)).trace(params, x_nd)
  has_callback = lambda plat: "python_cpu_callback" in traced.lower(
      lowering_platforms=(plat,)).as_text()
  assert has_callback("cpu")
  assert not has_callback("cuda") and not has_callback("tpu")
  assert "dot_general" in traced.lower(lowering_platforms=("cuda",)).as_text()


# --------------------------------------------------------------------------- ridge, lstsq


def test_error_matches_design_mse():
  phi_nr, y_n, m = _design_problem(10)
  rng = np.random.default_rng(0)
  u_r, u0 = rng.normal(size=phi_nr.shape[1]), 0.7
  want = np.mean((phi_nr @ u_r + u0 - y_n) ** 2)
  np.testing.assert_allclose(solvers.error(m, u_r, u0), want, rtol=1e-12)


@pytest.mark.parametrize("lam", [1e-6, 1e-2, 1.0])
def test_ridge_matches_numpy_solve(lam):
  _, _, m = _design_problem(11)
  r = m.b_r.shape[0]
  G_aug = np.block([[m.G_rr, m.mean_r[:, None]], [m.mean_r[None, :], np.ones((1, 1))]])
  b_aug = np.append(m.b_r, m.y_mean)
  want = np.linalg.solve(G_aug + lam * np.diag(np.append(np.ones(r), 0.0)), b_aug)
  u_r, u0 = solvers.ridge(jax.tree.map(jnp.asarray, m), lam)
  np.testing.assert_allclose(u_r, want[:r], rtol=1e-9, atol=1e-11)
  np.testing.assert_allclose(u0, want[r], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("dup", [False, True])
def test_least_squares_matches_lstsq(dup):
  phi_nr, y_n, m = _design_problem(12, dup=dup)
  A = np.concatenate([phi_nr, np.ones((phi_nr.shape[0], 1))], axis=1)
  want, *_ = np.linalg.lstsq(A, y_n, rcond=None)
  u_r, u0 = solvers.least_squares(jax.tree.map(jnp.asarray, m))
  # Duplicated columns: the null space (e_i - e_j, 0) leaves u0 alone, so the two
  # minimal-norm solutions coincide.
  np.testing.assert_allclose(u_r, want[:-1], rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(u0, want[-1], rtol=1e-7, atol=1e-9)
  want_err = np.mean((A @ want - y_n) ** 2)
  np.testing.assert_allclose(solvers.error(m, u_r, u0), want_err, rtol=1e-9)
  if not dup:
    u_ridge, u0_ridge = solvers.ridge(jax.tree.map(jnp.asarray, m), 1e-13)
    np.testing.assert_allclose(u_ridge, want[:-1], rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- box fit


def _lsq_linear_error(m, B):
  """Reference min E(u.f + u0 - y)^2, |u_i| <= B, by scipy lsq_linear on a square-root form."""
  Gc = m.G_rr - np.outer(m.mean_r, m.mean_r)
  bc = m.b_r - m.y_mean * m.mean_r
  yyc = m.yy - m.y_mean**2
  L = scipy.linalg.cholesky(Gc, lower=True)       # Gc = L L^T = A^T A with A = L^T
  t = scipy.linalg.solve_triangular(L, bc, lower=True)  # A^T t = bc
  res = scipy.optimize.lsq_linear(L.T, t, bounds=(-B, B), method="bvls", tol=1e-14,
                                  lsmr_tol=None)
  u = res.x
  return u @ Gc @ u - 2 * bc @ u + yyc, u


@pytest.mark.parametrize("precondition", [True, False])
def test_box_fit_matches_scipy_lsq_linear(precondition):
  _, _, m = _design_problem(13)
  B_grid = np.array([1e-3, 0.03, 0.1, 0.3, 1.0, 3.0])
  fit = solvers.box_fit(jax.tree.map(jnp.asarray, m), B_grid, num_iters=2000,
                        precondition=precondition)
  assert fit.u_Br.shape == (len(B_grid), m.b_r.shape[0])
  for i, B in enumerate(B_grid):
    want, u_want = _lsq_linear_error(m, B)
    np.testing.assert_allclose(fit.errors_B[i], want, rtol=1e-6)
    assert np.max(np.abs(fit.u_Br[i])) <= B * (1 + 1e-12)
    np.testing.assert_allclose(fit.u_Br[i], u_want, atol=1e-3 * B + 1e-6)
  assert np.all(fit.kkt_B < 1e-6), fit.kkt_B
  assert np.all(fit.gap_B < 1e-8 * m.yy), fit.gap_B


def test_box_fit_gap_certifies_the_minimum_when_not_converged():
  _, _, m = _design_problem(13)
  B_grid = np.array([0.03, 0.1, 0.3, 1.0])
  fit = solvers.box_fit(jax.tree.map(jnp.asarray, m), B_grid, num_iters=10)
  for i, B in enumerate(B_grid):
    want, _ = _lsq_linear_error(m, B)
    assert fit.errors_B[i] - fit.gap_B[i] <= want * (1 + 1e-12) <= fit.errors_B[i] * (1 + 1e-12)


def test_box_fit_huge_B_is_least_squares_and_tiny_B_is_variance():
  _, _, m = _design_problem(14)
  mj = jax.tree.map(jnp.asarray, m)
  B_grid = jnp.array([1e-12, 1e-2, 0.1, 1.0, 10.0, 1e6])
  fit = solvers.box_fit(mj, B_grid, num_iters=3000)
  u_ls, u0_ls = solvers.least_squares(mj)
  np.testing.assert_allclose(fit.errors_B[-1], solvers.error(mj, u_ls, u0_ls), rtol=1e-8)
  np.testing.assert_allclose(fit.u_Br[-1], u_ls, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(fit.u0_B[-1], u0_ls, rtol=1e-5, atol=1e-6)
  # u ~ 0 with the best bias u0 = E y: error = Var y.
  np.testing.assert_allclose(fit.errors_B[0], m.yy - m.y_mean**2, rtol=1e-9)
  np.testing.assert_allclose(fit.u0_B[0], m.y_mean, rtol=1e-9)
  assert np.all(np.diff(np.asarray(fit.errors_B)) <= 1e-12 * m.yy)
  # With the least-squares hint, every B beyond max|u_ls| is exact after any iterations.
  hinted = solvers.box_fit(mj, B_grid, num_iters=1, u_hint_r=u_ls)
  np.testing.assert_allclose(hinted.u_Br[-1], u_ls, rtol=1e-12)


def test_box_fit_jits_once_for_a_given_shape():
  _, _, m = _design_problem(15, r=10)
  mj = jax.tree.map(jnp.asarray, m)
  B_grid = jnp.geomspace(1e-3, 1e2, 5)
  solvers.box_fit(mj, B_grid, num_iters=50)
  with jax.log_compiles(True):
    before = solvers.box_fit._cache_size()
    solvers.box_fit(mj, 2 * B_grid, num_iters=50)
    assert solvers.box_fit._cache_size() == before


def test_smallest_B():
  B_grid = jnp.array([0.1, 0.2, 0.4, 0.8])
  errors = jnp.array([0.9, 0.5, 0.2, 0.1])
  assert float(solvers.smallest_B(B_grid, errors, 0.5)) == pytest.approx(0.2)
  assert float(solvers.smallest_B(B_grid, errors, 0.95)) == pytest.approx(0.1)
  assert np.isnan(float(solvers.smallest_B(B_grid, errors, 0.05)))


# --------------------------------------------------------------------------- exact vs sample


def _mc_tolerance(fm, params, target_fn, d, n, k=6.0):
  """k Monte Carlo standard errors of each moment at n samples, from a pilot sample."""
  x_nd = jax.random.normal(jax.random.key(99), (1 << 14, d), jnp.float64)
  phi, y = np.asarray(fm.apply(params, x_nd)), np.asarray(target_fn(x_nd))
  sd = solvers.Moments(G_rr=np.std(phi[:, :, None] * phi[:, None, :], 0),
                       b_r=np.std(phi * y[:, None], 0), mean_r=np.std(phi, 0),
                       y_mean=np.std(y), yy=np.std(y**2))
  return jax.tree.map(lambda s: k * s / np.sqrt(n), sd)


def _check_exact_vs_sample(fm, params, exact, target_fn, d):
  n = 1 << 16
  sample = solvers.sample_moments(fm.apply, params, target_fn, jax.random.key(21), n=n,
                                  chunk=8192, d=d, dtype=jnp.float64)
  tol = _mc_tolerance(fm, params, target_fn, d, n)
  for name, got, want, t in zip(solvers.Moments._fields, sample, exact, tol):
    np.testing.assert_array_less(np.abs(np.asarray(got) - np.asarray(want)), t + 1e-12,
                                 err_msg=name)


def test_gaussian_moments_match_sample_moments():
  d, r = 3, 6
  fm = features.get("relu_biased")
  params = fm.init(jax.random.key(20), d, r, jnp.float64)
  form = fm.ridge(params)
  w_star, b_star = jnp.array([0.6, -0.8, 0.0]), 0.3
  target_fn = lambda x_nd: jax.nn.relu(x_nd @ w_star + b_star)
  exact = solvers.Moments(G_rr=gaussian.ridge_gram(form),
                          b_r=gaussian.ridge_cross(form, w_star, b_star, "relu"),
                          mean_r=gaussian.ridge_mean(form),
                          y_mean=gaussian.ridge_target_mean(w_star, b_star, "relu"),
                          yy=gaussian.ridge_target_second(w_star, b_star, "relu"))
  _check_exact_vs_sample(fm, params, exact, target_fn, d)


@pytest.mark.parametrize("target_name", ["relu_neuron", "psi"])
def test_exact_moments_match_sample_moments(target_name):
  d, r = 3, 6
  fm = features.get("relu_biased")
  params = fm.init(jax.random.key(20), d, r, jnp.float64)
  w_star = jnp.array([0.6, -0.8, 0.0], jnp.float64)
  if target_name == "relu_neuron":
    target = targets.relu_neuron(w_star, 0.3)
  else:
    target = targets.psi_target(d * w_star, 3)
  exact = solvers.exact_moments(fm.ridge(params), target)
  _check_exact_vs_sample(fm, params, exact, target.fn, d)


def test_hinge_ball_fit_against_projected_subgradient_and_constraint():
  """The smoothed-hinge FISTA readout against a long projected subgradient run (numpy)."""
  rng = np.random.default_rng(0)
  n, r = 200, 12
  phi = rng.normal(size=(n, r))
  y = np.sign(phi @ rng.normal(size=r) + 0.5 * rng.normal(size=n))
  radii = np.array([0.1, 0.5, 2.0])
  fit = solvers.hinge_ball_fit(jnp.asarray(phi), jnp.asarray(y), radii, mu=1e-3,
                               num_iters=3000)
  hinge = lambda u: np.mean(np.maximum(0, 1 - y * (phi @ u)))
  for b, rad in enumerate(radii):
    u_fit = np.asarray(fit.u_Br[b])
    assert np.linalg.norm(u_fit) <= rad * (1 + 1e-9)
    np.testing.assert_allclose(fit.hinge_B[b], hinge(u_fit), rtol=1e-10)
    # Reference: projected subgradient with step 1/sqrt(t), best iterate.
    u, best = np.zeros(r), np.inf
    for t in range(1, 20001):
      g = -(phi * (y * (y * (phi @ u) < 1))[:, None]).mean(0)
      u = u - 0.5 * rad / np.sqrt(t) * g
      u *= min(1.0, rad / max(np.linalg.norm(u), 1e-300))
      best = min(best, hinge(u))
    assert hinge(u_fit) <= best + 2e-3
    assert hinge(u_fit) >= best - 5e-3   # both near the same minimum
  assert np.all(np.diff(np.asarray(fit.hinge_B)) < 0)


_BATCH_SCRIPT = """
import json
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from rfjax import features, solvers, targets
fm = features.get("relu_gauss")
params = fm.init(jax.random.key(0), 5, 40, jnp.float64)
tgt = targets.relu_neuron(jnp.ones(5) / jnp.sqrt(5.0), 0.2)
out = dict(devices=jax.device_count())
for sharded in (False, True):
  out[str(sharded)] = []
  for gram in ("xla", "syrk"):
    # n = 3001: 93 full chunks of 32 (not a multiple of 8 devices) and a last chunk of 25
    m = jax.jit(lambda p: solvers.sample_moments(fm.apply, p, tgt.fn, jax.random.key(1), n=3001,
                                                 chunk=32, d=5, dtype=jnp.float64,
                                                 batch_sharded=sharded, gram=gram))(params)
    x = jax.random.normal(jax.random.key(2), (1003, 5), jnp.float64)
    m2 = jax.jit(lambda p: solvers.data_moments(fm.apply, p, x, tgt.fn(x), chunk=64,
                                                batch_sharded=sharded, gram=gram))(params)
    out[str(sharded)] += [[a.tolist() for a in m], [a.tolist() for a in m2]]
print(json.dumps(out))
"""


@pytest.mark.parametrize("n_dev", [1, 8])
def test_batch_sharded_moments_equal_unsharded(n_dev):
  """Moments over a "batch" mesh axis (chunks or rows split over devices, leftovers on every
  device) equal the single-stream ones to rounding, on 1 and 8 CPU devices, with the Gram
  by XLA dots and by BLAS syrk (the host callback runs on every device)."""
  import json, os, subprocess, sys  # pylint: disable=import-outside-toplevel,multiple-imports
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}",
             JAX_PLATFORMS="cpu")
  res = subprocess.run([sys.executable, "-c", _BATCH_SCRIPT], env=env, capture_output=True,
                       text=True, timeout=600)
  assert res.returncode == 0, res.stderr[-3000:]
  out = json.loads(res.stdout.strip().splitlines()[-1])
  assert out["devices"] == n_dev
  for plain, sharded in zip(out["False"], out["True"]):
    for a, b in zip(plain, sharded):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-14)
