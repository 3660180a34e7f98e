"""Thm 3.3: r random features with u_i = g(w_i)/r approximate f(x) = E_w[g(w)σ(<w,x>)].

One random polynomial P (degree ≤ k, |P| ≤ 1 on the unit ball, drawn as in integral_rep)
and its Legendre g (Thm 3.4, PAPER.md §3.4) are fixed per cell. For each seed, w_1, w_2, …
~ U([-1/√d, 1/√d]^d) i.i.d.; f̂_r(x) = Σ_{i≤r} g(w_i)σ(<w_i,x>)/r is accumulated over feature
chunks under lax.scan (memory O(n_test·chunk)), and its sup-error max_x |f̂_r(x) − f(x)| over
the shared test points (half on the unit sphere, half uniform in the unit ball) is read off
at every r = 2^j. The r values of one seed are prefixes of one sequence of w_i (nested).
f is the exact integral (legendre.integral; = P for polynomial σ).

Bound (PAPER.md §3.3): L·C/√r·(4 + √(2 log(1/δ))), L = max|σ'| on [-1, 1] (|<w,x>| ≤ 1),
C = the computed sup|g| (a lower estimate; Σ|b_J| ≥ sup|g| is recorded too).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from rfjax import activations
from rfjax import distributions
from rfjax import experiments
from rfjax import legendre
from rfjax import results
from rfjax import sweep
from rfjax import validation
from rfjax.experiments import integral_rep

NAME = "rf_concentration"
_SUP_CHUNK = 256                # points per step of the sup|g| search


def _one_seed(key: jax.Array, x_nd: jax.Array, f_n: jax.Array, b_t: jax.Array, *,
              sigma: str, d: int, k: int, K: int, r_max: int, chunk: int) -> jax.Array:
  """sup_x |f̂_r − f| after every chunk of features (r = chunk, 2·chunk, …). [r_max // chunk]."""
  cons = legendre.prepare(sigma, d, k, K)
  act = activations.get(sigma)
  x32 = x_nd.astype(jnp.float32)
  keys = jax.random.split(key, r_max // chunk)

  def step(acc_n, inp):
    key_c, count = inp
    w_cd = jax.random.uniform(key_c, (chunk, d), jnp.float64, -1.0, 1.0) / math.sqrt(d)
    g_c = legendre.g(cons.j_td, b_t, w_cd)                                 # [c], float64
    hi = jax.lax.Precision.HIGHEST                      # no bf16/TF32 passes on TPU/GPU
    phi_nc = act.fn(jnp.dot(x32, w_cd.astype(jnp.float32).T, precision=hi))  # [n, c], f32
    acc_n = acc_n + jnp.dot(phi_nc, g_c.astype(jnp.float32), precision=hi).astype(jnp.float64)
    err = jnp.max(jnp.abs(acc_n / (count * chunk) - f_n))
    return acc_n, err

  counts = jnp.arange(1, r_max // chunk + 1, dtype=jnp.float64)
  _, errs = jax.lax.scan(step, jnp.zeros_like(f_n), (keys, counts))
  return errs


def validate(config: mlc.ConfigDict) -> None:
  act = activations.require_analytic(config.sigma, field="sigma")
  if act.degree is None and config.sigma not in legendre.EXPONENTIAL_FORMS:
    raise validation.ConfigError("sigma", f"no exact integral for {config.sigma!r}")
  validation.positive_ints("ds", config.ds, minimum=1)
  k = validation.positive_ints("k", config.k)[0]
  if act.degree is None:
    K = validation.positive_ints("truncation_degree", config.truncation_degree)[0]
    if K < k:
      raise validation.ConfigError("truncation_degree", f"must be >= k = {k}")
  elif act.degree < k:
    raise validation.ConfigError("k", f"polynomial σ {config.sigma!r} has degree < {k}")
  chunk = validation.positive_ints("chunk", config.chunk)[0]
  lo = validation.positive_ints("log2_r_min", config.log2_r_min)[0]
  hi = validation.positive_ints("log2_r_max", config.log2_r_max)[0]
  if hi <= lo:
    raise validation.ConfigError("log2_r_max", f"must exceed log2_r_min = {lo}")
  if 2**lo % chunk:
    raise validation.ConfigError("chunk", f"must divide 2^log2_r_min = {2**lo}")
  validation.positive_ints("num_seeds", config.num_seeds, minimum=2)
  validation.positive_ints("num_terms", config.num_terms)
  validation.positive_ints("num_test", config.num_test, minimum=2)
  num_sup = validation.positive_ints("num_sup", config.num_sup)[0]
  if num_sup % _SUP_CHUNK:
    raise validation.ConfigError("num_sup", f"must be a multiple of {_SUP_CHUNK}, got {num_sup}")
  validation.fractions("delta", config.delta, low=0.0, high=1.0)


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  return [dict(d=d, sigma=config.sigma, k=config.k) for d in config.ds]


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array) -> list[dict]:
  d, k, sigma = cell["d"], cell["k"], cell["sigma"]
  act = activations.get(sigma)
  K = act.degree if act.degree is not None else config.truncation_degree
  k_poly, k_sph, k_ball, k_seeds = jax.random.split(key, 4)
  k_alpha, k_sup = jax.random.split(k_poly)
  cons = legendre.prepare(sigma, d, k, K)
  alpha = integral_rep.random_alpha(k_alpha, jnp.ones(len(cons.i_sd), bool), config.num_terms)
  b_t = legendre.coefficients(cons, alpha)
  sup_g = float(legendre.sup_g_estimate(k_sup, cons.j_td, b_t, num=config.num_sup,
                                        chunk=_SUP_CHUNK))
  half = config.num_test // 2
  x = jnp.concatenate([distributions.sphere(k_sph, half, d, dtype=jnp.float64),
                       distributions.ball(k_ball, config.num_test - half, d, dtype=jnp.float64)])
  f = legendre.integral(sigma, cons.j_td, b_t, x)
  residual = float(jnp.max(jnp.abs(f - legendre.polynomial_eval(cons.i_sd, alpha, x))))
  r_max = 2**config.log2_r_max
  fn = functools.partial(_one_seed, sigma=sigma, d=d, k=k, K=K, r_max=r_max, chunk=config.chunk)
  errs = sweep.over_seeds(fn, sweep.seed_keys(k_seeds, config.num_seeds), x, f, b_t)
  lip = activations.lipschitz_on(act, 1.0)
  factor = 4.0 + math.sqrt(2.0 * math.log(1.0 / config.delta))
  rows = []
  for j in range(config.log2_r_min, config.log2_r_max + 1):
    r = 2**j
    for s in range(config.num_seeds):
      rows.append(dict(cell, K=K, r=r, seed=s, sup_error=float(errs[s, r // config.chunk - 1]),
                       bound=lip * sup_g / math.sqrt(r) * factor, sup_g=sup_g,
                       g_abs_sum=float(jnp.sum(jnp.abs(b_t))), lipschitz=lip,
                       residual=residual))
  return rows


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """Slope of log(mean sup-error) vs log r near −1/2; bound holds in ≥ 1 − δ of seeds."""
  f = results.to_float
  out_cells, slopes, worst_frac = [], [], 1.0
  for d in sorted({r["d"] for r in rows}):
    rs_d = [r for r in rows if r["d"] == d]
    rvals = sorted({r["r"] for r in rs_d})
    mean_err = [float(np.mean([f(r["sup_error"]) for r in rs_d if r["r"] == rv])) for rv in rvals]
    slope = float(np.polyfit(np.log(rvals), np.log(mean_err), 1)[0])
    seeds = sorted({r["seed"] for r in rs_d})
    ok_seed = [all(f(r["sup_error"]) <= f(r["bound"]) for r in rs_d if r["seed"] == s)
               for s in seeds]
    frac = float(np.mean(ok_seed))
    # the bound's slack: smallest bound / error over all rows
    slack = min(f(r["bound"]) / f(r["sup_error"]) for r in rs_d)
    r0 = rs_d[0]
    out_cells.append(dict(d=d, slope=slope, frac_seeds_within_bound=frac, min_bound_over_error=slack,
                          r=rvals, mean_sup_error=mean_err, sup_g=f(r0["sup_g"]),
                          g_abs_sum=f(r0["g_abs_sum"]), lipschitz=f(r0["lipschitz"]),
                          residual=f(r0["residual"])))
    slopes.append(slope)
    worst_frac = min(worst_frac, frac)
  slope_ok = all(abs(s + 0.5) <= config.slope_tol for s in slopes)
  bound_ok = worst_frac >= 1.0 - config.delta
  c0 = out_cells[0]
  return dict(
      claim=("Thm 3.3: with u_i = g(w_i)/r, sup_{‖x‖≤1}|Σu_iσ(<w_i,x>) − f(x)| ≤ "
             "LC/√r·(4 + √(2 log(1/δ))) with probability ≥ 1 − δ; the error rate is r^{-1/2}."),
      prediction=(f"slope of log mean sup-error vs log r in −0.5 ± {config.slope_tol}; bound holds "
                  f"at every r in ≥ {1 - config.delta:.2f} of seeds"),
      measured=(f"slopes {', '.join(f'{s:.3f}' for s in slopes)} (d = "
                f"{', '.join(str(c['d']) for c in out_cells)}); fraction of seeds within the "
                f"bound ≥ {worst_frac:.3f}; bound/error ≥ {min(c['min_bound_over_error'] for c in out_cells):.3g}"),
      holds=bool(slope_ok and bound_ok),
      slopes=slopes,
      frac_seeds_within_bound=worst_frac,
      constants=(f"L = max|σ'| on [-1,1] = {c0['lipschitz']:.4g} ({config.sigma}); C = computed "
                 f"sup|g| (lower estimate, {c0['sup_g']:.4g} at d={c0['d']}); Σ|b_J| = "
                 f"{c0['g_abs_sum']:.4g} ≥ sup|g|; δ = {config.delta}; u_i = g(w_i)/r exactly as "
                 "in PAPER.md §3.3"),
      test_points=f"{config.num_test} points: half on the unit sphere, half uniform in the unit ball",
      cells=out_cells,
  )


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    claim="Thm 3.3 (random features approximate the integral at rate r^{-1/2})"))
