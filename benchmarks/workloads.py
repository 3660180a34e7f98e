"""The benchmark workloads: for each, a data builder and one `setup` per implementation.

`setup(params) -> run` prepares an implementation in its own worker process (data, models,
compilation outside the timing) and returns `run() -> dict`, the timed work; the dict holds
the numbers that show every implementation computed the same thing (a test MSE, a loss,
correlations). Peers import their library inside their setup, so a worker loads only the
library it measures.

Workloads (sizes come from run.py):
  gemm    numpy float32 matmul, the machine's reference rate
  ridge   RF ridge fit on given data: ReLU features, Gram, Φᵀy, Cholesky solve
  sgd     online SGD of the one-hidden-layer net, hinge loss
  sweep   the RF fit over many seeds, data drawn per seed
  psi     exact correlations <f_i, ψ_{w*}> per pair against Monte Carlo
  scaling the RF fit with inputs drawn inside the fit, growing n
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

Run = Callable[[], dict]
IMPLS: dict[str, dict[str, Callable[[dict], Run]]] = {}


def impl(workload: str, name: str):
  """Registers `setup(params) -> run` as implementation `name` of `workload`."""
  def deco(fn):
    IMPLS.setdefault(workload, {})[name] = fn
    return fn
  return deco


def flops(workload: str, p: dict) -> float | None:
  """FLOPs of one run where the work is FLOP-bound, else None.

  ridge / scaling: features 2ndr + Gram nr² (symmetric) + Φᵀy 2nr; sgd at batch b:
  forward 2bdr + 2br, backward 2bdr (∂W) + 4br (∂U, ∂h), per step; sweep: the ridge
  count per seed; gemm: 2n³.
  """
  if workload == "gemm":
    return 2.0 * p["n"] ** 3
  if workload in ("ridge", "scaling"):
    n, d, r = p["n"], p["d"], p["r"]
    return 2.0 * n * d * r + n * r * r + 2.0 * n * r
  if workload == "sweep":
    n, d, r = p["n"], p["d"], p["r"]
    return p["seeds"] * (2.0 * n * d * r + n * r * r + 2.0 * n * r)
  if workload == "sgd":
    b, d, r = p["batch"], p["d"], p["r"]
    return p["steps"] * (4.0 * b * d * r + 6.0 * b * r)
  return None


# ----------------------------------------------------------------------------- shared data


def _sphere_columns(rng: np.random.Generator, d: int, r: int) -> np.ndarray:
  """w_dr with columns uniform on the unit sphere, float32."""
  w = rng.standard_normal((d, r), dtype=np.float32)
  return w / np.linalg.norm(w, axis=0, keepdims=True)


def ridge_data(p: dict) -> dict[str, np.ndarray]:
  """x_nd ~ N(0, I), ReLU-sphere features w_dr, target y = [<w*, x>]_+ (|w*| = 1), test set."""
  rng = np.random.default_rng(p["seed"])
  n, d, r = p["n"], p["d"], p["r"]
  w_star = _sphere_columns(rng, d, 1)[:, 0]
  x_nd = rng.standard_normal((n, d), dtype=np.float32)
  x_test = rng.standard_normal((p["n_test"], d), dtype=np.float32)
  return dict(x_nd=x_nd, y_n=np.maximum(x_nd @ w_star, 0), w_dr=_sphere_columns(rng, d, r),
              x_test=x_test, y_test=np.maximum(x_test @ w_star, 0), w_star=w_star)


def _mse(pred: np.ndarray, y: np.ndarray) -> dict:
  err = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
  return dict(test_mse=float(np.mean(err * err)))


def _np_ridge_solve(G, b, mean, y_mean, lam):
  """Ridge with a free bias from normalised moments, float32 Cholesky (scipy)."""
  import scipy.linalg  # pylint: disable=import-outside-toplevel
  r = b.shape[0]
  A = np.empty((r + 1, r + 1), G.dtype)
  A[:r, :r] = G
  A[:r, r] = A[r, :r] = mean
  A[r, r] = 1
  A[np.arange(r), np.arange(r)] += lam
  rhs = np.append(b, y_mean).astype(G.dtype)
  u = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A, lower=True, check_finite=False), rhs,
                             check_finite=False)
  return u[:r], u[r]


# ----------------------------------------------------------------------------- gemm


@impl("gemm", "numpy")
def _gemm_numpy(p: dict) -> Run:
  rng = np.random.default_rng(0)
  a = rng.standard_normal((p["n"], p["n"]), dtype=np.float32)
  b = rng.standard_normal((p["n"], p["n"]), dtype=np.float32)

  def run():
    c = a @ b
    return dict(check=float(c[0, 0]))
  return run


# ----------------------------------------------------------------------------- ridge


@impl("ridge", "rfjax")
def _ridge_rfjax(p: dict) -> Run:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from rfjax import features, solvers  # pylint: disable=import-outside-toplevel
  data = ridge_data(p)
  fm = features.get("relu_sphere")
  params = {"w_dr": jnp.asarray(data["w_dr"]), "b_r": jnp.zeros((p["r"],), jnp.float32)}
  x_nd, y_n = jnp.asarray(data["x_nd"]), jnp.asarray(data["y_n"])

  @jax.jit
  def fit(params, x_nd, y_n):
    m = solvers.data_moments(fm.apply, params, x_nd, y_n, chunk=p["chunk"])
    return solvers.ridge(m, p["lam"])

  predict = jax.jit(lambda params, u, u0, x: fm.apply(params, x) @ u + u0)

  def run():
    u, u0 = jax.block_until_ready(fit(params, x_nd, y_n))
    return _mse(predict(params, u, u0, jnp.asarray(data["x_test"])), data["y_test"])
  return run


@impl("ridge", "numpy_scipy")
def _ridge_numpy(p: dict) -> Run:
  data = ridge_data(p)
  x_nd, y_n, w_dr, n = data["x_nd"], data["y_n"], data["w_dr"], p["n"]

  def run():
    phi = np.maximum(x_nd @ w_dr, 0)
    u, u0 = _np_ridge_solve(phi.T @ phi / n, phi.T @ y_n / n, phi.mean(0), y_n.mean(),
                            p["lam"])
    return _mse(np.maximum(data["x_test"] @ w_dr, 0) @ u + u0, data["y_test"])
  return run


@impl("ridge", "sklearn")
def _ridge_sklearn(p: dict) -> Run:
  from sklearn.linear_model import Ridge  # pylint: disable=import-outside-toplevel
  data = ridge_data(p)
  x_nd, y_n, w_dr = data["x_nd"], data["y_n"], data["w_dr"]

  def run():
    phi = np.maximum(x_nd @ w_dr, 0)
    # sklearn's penalty is on the sum of squares: alpha = n λ for the same fit.
    model = Ridge(alpha=p["lam"] * p["n"], solver="cholesky").fit(phi, y_n)
    return _mse(model.predict(np.maximum(data["x_test"] @ w_dr, 0)), data["y_test"])
  return run


@impl("ridge", "torch")
def _ridge_torch(p: dict) -> Run:
  import torch  # pylint: disable=import-outside-toplevel
  data = ridge_data(p)
  x_nd, y_n, w_dr = (torch.from_numpy(data[k]) for k in ("x_nd", "y_n", "w_dr"))
  n, r = p["n"], p["r"]

  def run():
    with torch.no_grad():
      phi = torch.relu(x_nd @ w_dr)
      A = torch.empty((r + 1, r + 1))
      A[:r, :r] = phi.T @ phi / n
      mean = phi.mean(0)
      A[:r, r], A[r, :r], A[r, r] = mean, mean, 1.0
      A[:r, :r] += p["lam"] * torch.eye(r)
      rhs = torch.cat([phi.T @ y_n / n, y_n.mean().reshape(1)])
      u = torch.cholesky_solve(rhs[:, None], torch.linalg.cholesky(A))[:, 0]
      pred = torch.relu(torch.from_numpy(data["x_test"]) @ w_dr) @ u[:r] + u[r]
    return _mse(pred.numpy(), data["y_test"])
  return run


# ----------------------------------------------------------------------------- sgd


def sgd_data(p: dict) -> dict[str, np.ndarray]:
  """Fresh batches x [steps, b, d], labels sign<w*, x>, Xavier-cube W_0 [r, d], a test set."""
  rng = np.random.default_rng(p["seed"])
  steps, b, d, r = p["steps"], p["batch"], p["d"], p["r"]
  w_star = _sphere_columns(rng, d, 1)[:, 0]
  x = rng.standard_normal((steps, b, d), dtype=np.float32)
  x_test = rng.standard_normal((p["n_test"], d), dtype=np.float32)
  a = 1.0 / math.sqrt(d)
  return dict(x=x, y=np.where(x @ w_star >= 0, 1.0, -1.0).astype(np.float32),
              w0=rng.uniform(-a, a, (r, d)).astype(np.float32), x_test=x_test,
              y_test=np.where(x_test @ w_star >= 0, 1.0, -1.0).astype(np.float32))


def _hinge_metrics(out: np.ndarray, y: np.ndarray) -> dict:
  m = np.asarray(out, np.float64) * y
  return dict(test_hinge=float(np.mean(np.maximum(0, 1 - m))), test_error=float(np.mean(m <= 0)))


@impl("sgd", "rfjax")
def _sgd_rfjax(p: dict) -> Run:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from rfjax import networks, training  # pylint: disable=import-outside-toplevel
  data = sgd_data(p)
  net = networks.make(p["r"])
  params0 = {"params": {"w": jnp.asarray(data["w0"]), "u": jnp.zeros((p["r"],), jnp.float32)}}
  trainer = training.make_trainer(net, "full", p["lr"], "hinge")

  @jax.jit
  def train(params0, x, y):
    state, _ = jax.lax.scan(lambda s, batch: (trainer.step(s, batch), None),
                            trainer.init(params0), (x, y))
    return state.params

  x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])

  def run():
    params = jax.block_until_ready(train(params0, x, y))
    return _hinge_metrics(net.apply(params, jnp.asarray(data["x_test"])), data["y_test"])
  return run


def _sgd_torch(p: dict, threads: int | None) -> Run:
  import torch  # pylint: disable=import-outside-toplevel
  if threads:
    torch.set_num_threads(threads)
  data = sgd_data(p)
  x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])

  def run():
    model = torch.nn.Sequential(torch.nn.Linear(p["d"], p["r"], bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(p["r"], 1, bias=False))
    with torch.no_grad():
      model[0].weight.copy_(torch.from_numpy(data["w0"]))
      model[2].weight.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=p["lr"])
    for t in range(p["steps"]):
      loss = torch.clamp(1 - y[t] * model(x[t])[:, 0], min=0).mean()
      opt.zero_grad()
      loss.backward()
      opt.step()
    with torch.no_grad():
      out = model(torch.from_numpy(data["x_test"]))[:, 0].numpy()
    return _hinge_metrics(out, data["y_test"])
  return run


impl("sgd", "torch")(functools.partial(_sgd_torch, threads=None))
impl("sgd", "torch_1thread")(functools.partial(_sgd_torch, threads=1))


# ----------------------------------------------------------------------------- sweep


def _sweep_fit_one(key, *, n: int, d: int, r: int, lam: float, chunk: int, n_test: int):
  """One seed of the sweep: features, inputs and test inputs drawn from `key`; test MSE."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from rfjax import distributions, features, solvers, targets  # pylint: disable=import-outside-toplevel
  k_w, k_x, k_t = jax.random.split(key, 3)
  fm = features.get("relu_sphere")
  params = fm.init(k_w, d, r, dtype=jnp.float32)
  target = targets.relu_neuron(jnp.ones((d,), jnp.float32) / math.sqrt(d), 0.0)
  m = solvers.sample_moments(fm.apply, params, target.fn, k_x, n=n, chunk=chunk, d=d)
  u, u0 = solvers.ridge(m, lam)
  x_test = distributions.gaussian(k_t, n_test, d)
  err = fm.apply(params, x_test) @ u + u0 - target.fn(x_test)
  return jnp.mean(err * err)


@impl("sweep", "rfjax")
def _sweep_rfjax(p: dict) -> Run:
  import jax  # pylint: disable=import-outside-toplevel
  from rfjax import sweep  # pylint: disable=import-outside-toplevel
  fit_one = functools.partial(_sweep_fit_one, n=p["n"], d=p["d"], r=p["r"], lam=p["lam"],
                              chunk=p["chunk"], n_test=p["n_test"])
  keys = sweep.seed_keys(jax.random.key(p["seed"]), p["seeds"])

  def run():
    mse_s = sweep.over_seeds(fit_one, keys, batch_size=p["seed_batch"])
    return dict(mean_test_mse=float(np.mean(mse_s)), sd_test_mse=float(np.std(mse_s)))
  return run


@impl("sweep", "numpy_loop")
def _sweep_numpy(p: dict) -> Run:
  n, d, r = p["n"], p["d"], p["r"]
  w_star = np.ones(d, np.float32) / np.float32(math.sqrt(d))

  def run():
    mse = []
    for s in range(p["seeds"]):
      rng = np.random.default_rng([p["seed"], s])
      w_dr = _sphere_columns(rng, d, r)
      x_nd = rng.standard_normal((n, d), dtype=np.float32)
      y_n = np.maximum(x_nd @ w_star, 0)
      phi = np.maximum(x_nd @ w_dr, 0)
      u, u0 = _np_ridge_solve(phi.T @ phi / n, phi.T @ y_n / n, phi.mean(0), y_n.mean(),
                              p["lam"])
      x_test = rng.standard_normal((p["n_test"], d), dtype=np.float32)
      err = np.maximum(x_test @ w_dr, 0) @ u + u0 - np.maximum(x_test @ w_star, 0)
      mse.append(float(np.mean(err.astype(np.float64) ** 2)))
    return dict(mean_test_mse=float(np.mean(mse)), sd_test_mse=float(np.std(mse)))
  return run


# ----------------------------------------------------------------------------- psi


def _psi_setup(p: dict):
  """Features (ReLU, w on the sphere, float64) and w* (radius R = d) shared by both modes."""
  import jax  # pylint: disable=import-outside-toplevel
  jax.config.update("jax_enable_x64", True)   # exact mode is float64 (a fresh worker process)
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from rfjax import psi  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(p["seed"])
  d = p["d"]
  w_dr = _sphere_columns(rng, d, p["r"]).astype(np.float64)
  w_star_kd = _sphere_columns(rng, d, p["w_stars"]).T.astype(np.float64) * d
  return jax, jnp, psi, psi.psi_params(d), jnp.asarray(w_dr), jnp.asarray(w_star_kd)


@impl("psi", "rfjax_exact")
def _psi_exact(p: dict) -> Run:
  jax, jnp, psi, pp, w_dr, w_star_kd = _psi_setup(p)
  from rfjax import features  # pylint: disable=import-outside-toplevel
  form = features.RidgeForm(w_dr, jnp.zeros(w_dr.shape[1]), "relu")

  @jax.jit
  def corr(w_star_kd):
    return jax.vmap(lambda w: psi.psi_target_cross(form, w, pp.m, pp.R))(w_star_kd)

  def run():
    c_kr = np.asarray(jax.block_until_ready(corr(w_star_kd)))
    return dict(corr=c_kr.ravel().tolist(), pairs=int(c_kr.size))
  return run


@impl("psi", "rfjax_mc")
def _psi_mc(p: dict) -> Run:
  jax, jnp, psi, pp, w_dr, w_star_kd = _psi_setup(p)
  n, chunk = p["mc_n"], p["mc_chunk"]
  w32, ws32 = w_dr.astype(jnp.float32), w_star_kd.astype(jnp.float32)

  @jax.jit
  def sums(key):
    def add(acc, i):
      x_cd = jax.random.normal(jax.random.fold_in(key, i), (chunk, p["d"]), jnp.float32)
      f_cr = jax.nn.relu(x_cd @ w32)
      psi_ck = psi.psi(x_cd @ ws32.T, pp.m)
      hi = jax.lax.Precision.HIGHEST
      s1 = jnp.matmul(psi_ck.T, f_cr, precision=hi).astype(jnp.float64)
      s2 = jnp.matmul((psi_ck * psi_ck).T, f_cr * f_cr, precision=hi).astype(jnp.float64)
      return (acc[0] + s1, acc[1] + s2), None
    zero = jnp.zeros((p["w_stars"], p["r"]), jnp.float64)
    (s1, s2), _ = jax.lax.scan(add, (zero, zero), jnp.arange(n // chunk))
    return s1, s2

  def run():
    s1, s2 = (np.asarray(a) for a in jax.block_until_ready(sums(jax.random.key(p["seed"]))))
    m = n // chunk * chunk
    mean = s1 / m
    sd = np.sqrt(np.maximum(s2 / m - mean * mean, 0))
    return dict(corr=mean.ravel().tolist(), sd=sd.ravel().tolist(), n=m, pairs=int(mean.size))
  return run


# ----------------------------------------------------------------------------- scaling


@impl("scaling", "rfjax")
def _scaling_rfjax(p: dict) -> Run:
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from rfjax import features, solvers, targets  # pylint: disable=import-outside-toplevel
  fm = features.get("relu_sphere")
  d, r = p["d"], p["r"]
  w_star = jnp.ones((d,), jnp.float32) / math.sqrt(d)
  target = targets.relu_neuron(w_star, 0.0)

  def fit(key):
    k_w, k_x = jax.random.split(key)
    params = fm.init(k_w, d, r, dtype=jnp.float32)
    m = solvers.sample_moments(fm.apply, params, target.fn, k_x, n=p["n"], chunk=p["chunk"], d=d)
    return params, solvers.ridge(m, p["lam"])

  key = jax.random.key(p["seed"])
  compiled = jax.jit(fit).lower(key).compile()    # compile outside the timing
  x_test = jax.random.normal(jax.random.key(p["seed"] + 1), (p["n_test"], d), jnp.float32)

  def run():
    params, (u, u0) = jax.block_until_ready(compiled(key))
    return _mse(fm.apply(params, x_test) @ u + u0, target.fn(x_test))
  return run


@impl("scaling", "numpy_scipy")
def _scaling_numpy(p: dict) -> Run:
  d, r, n = p["d"], p["r"], p["n"]
  w_star = np.ones(d, np.float32) / np.float32(math.sqrt(d))
  x_test = np.random.default_rng(p["seed"] + 1).standard_normal((p["n_test"], d), np.float32)

  def run():
    rng = np.random.default_rng(p["seed"])
    w_dr = _sphere_columns(rng, d, r)
    x_nd = rng.standard_normal((n, d), dtype=np.float32)
    y_n = np.maximum(x_nd @ w_star, 0)
    phi = np.maximum(x_nd @ w_dr, 0)
    u, u0 = _np_ridge_solve(phi.T @ phi / n, phi.T @ y_n / n, phi.mean(0), y_n.mean(), p["lam"])
    return _mse(np.maximum(x_test @ w_dr, 0) @ u + u0, np.maximum(x_test @ w_star, 0))
  return run


# ----------------------------------------------------------------------------- boxpath


def boxpath_problem(p: dict):
  """The certified box fit of ψ_{w*} by r biased ReLU features at d (exact Gram, float64)."""
  import jax  # pylint: disable=import-outside-toplevel
  jax.config.update("jax_enable_x64", True)    # exact mode is float64 (a fresh worker process)
  from rfjax import api, features  # pylint: disable=import-outside-toplevel
  from rfjax.experiments import relu_neuron_rf as rn  # pylint: disable=import-outside-toplevel
  k_feat, k_star = jax.random.split(jax.random.key(p["seed"]))
  params = features.get("relu_biased").init(k_feat, p["d"], p["r"])
  w_star_sd = np.asarray(api.w_star_sphere(k_star, p["d"], 1))
  return rn._exact_problems(params, "relu_biased", p["d"], w_star_sd,  # pylint: disable=protected-access
                            [dict(kind="psi", s=0, j=-1)])[0]


def boxpath_grid(p: dict) -> np.ndarray:
  """The values of B: r·B log-spaced from 10 to 1e6."""
  return np.geomspace(10.0, 1e6, p["values"]) / p["r"]


def _boxpath_out(sols, yy: float, idx: list[int]) -> dict:
  return dict(errors=[s.error for s in sols], gaps=[s.gap / yy for s in sols], idx=idx,
              max_gap=max(s.gap for s in sols) / yy)


@impl("boxpath", "rfjax")
def _boxpath_rfjax(p: dict) -> Run:
  from rfjax import boxqp  # pylint: disable=import-outside-toplevel
  prob, grid = boxpath_problem(p), boxpath_grid(p)

  def run():
    boxqp._CACHE.clear()            # pylint: disable=protected-access  # every run starts cold
    sols = boxqp.path(prob, grid)
    out = _boxpath_out(sols, prob.yy, list(range(len(grid))))
    out["kkt"] = all(s.kkt for s in sols)
    return out
  return run


@impl("boxpath", "quadprog")
def _boxpath_quadprog(p: dict) -> Run:
  """quadprog (Goldfarb–Idnani, dense) on the stated subset of B values, certified by boxqp."""
  import quadprog  # pylint: disable=import-outside-toplevel
  from rfjax import boxqp  # pylint: disable=import-outside-toplevel
  prob, grid = boxpath_problem(p), boxpath_grid(p)
  r = p["r"]
  C = np.hstack([np.eye(r), -np.eye(r)])
  idx = list(p["peer_values"])

  def run():
    sols = [boxqp.certify(prob, quadprog.solve_qp(prob.Q_rr, prob.c_r, C,
                                                  -grid[i] * np.ones(2 * r))[0], grid[i])
            for i in idx]
    return _boxpath_out(sols, prob.yy, idx)
  return run
