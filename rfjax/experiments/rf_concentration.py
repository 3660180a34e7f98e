"""Thm 3.3: r random features with u_i = g(w_i)/r approximate f(x) = E_w[g(w)σ(<w,x>)].

Cells are (d, P): for each d, `num_polys` random polynomials P (degree ≤ k, |P| ≤ 1 on the
unit ball, drawn as in integral_rep) and their Legendre g (Thm 3.4; docs/theory.md "Integral
representation (Thm 3.4)"). For each seed, w_1, w_2, … ~ U([-1/√d, 1/√d]^d) i.i.d.;
f̂_r(x) = Σ_{i≤r} g(w_i)σ(<w_i,x>)/r is accumulated over feature chunks under lax.scan
(memory O(n_test·chunk)), and its sup-error max_x |f̂_r(x) − f(x)| over the cell's test points
(half on the unit sphere, half uniform in the unit ball) is read off at every r = 2^j. The r
values of one seed are prefixes of one sequence of w_i (nested). f is the exact integral
(legendre.integral; = P for polynomial σ).

Bound (docs/theory.md "Random features approximate the integral (Thm 3.3)"):
L·C/√r·(4 + √(2 log(1/δ))), L = max(max|σ'| on [-1, 1], |σ(0)|) (|<w,x>| ≤ 1). Two values
of C bracket sup|g|: `bound` uses the searched sup|g| (a lower estimate, so the bound is at
most the theorem's: "within" it is within the theorem's), `bound_upper` uses Σ|b_J| ≥ sup|g|
("above" it is above the theorem's). sup_error / bound says how tight it is.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections as mlc
import numpy as np
import scipy.stats

from rfjax import activations
from rfjax import distributions
from rfjax import experiments
from rfjax import legendre
from rfjax import plots
from rfjax import results
from rfjax import stats
from rfjax import sweep
from rfjax import validation
from rfjax import verdicts
from rfjax.experiments import integral_rep

NAME = "rf_concentration"
# The row fields that tell one cell's rows apart, in row-key order (Experiment.row_id_fields).
ROW_ID_FIELDS = ("sigma", "r", "seed")
_SUP_CHUNK = 256                # points per step of the sup|g| search
_sup_g = jax.jit(legendre.sup_g_estimate, static_argnames=("num", "chunk", "refine", "steps", "K"))


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
  validation.positive_ints("num_polys", config.num_polys)
  validation.positive_ints("num_seeds", config.num_seeds, minimum=2)
  validation.positive_ints("num_terms", config.num_terms)
  validation.positive_ints("num_test", config.num_test, minimum=2)
  num_sup = validation.positive_ints("num_sup", config.num_sup)[0]
  if num_sup % _SUP_CHUNK:
    raise validation.ConfigError("num_sup", f"must be a multiple of {_SUP_CHUNK}, got {num_sup}")
  validation.fractions("delta", config.delta, low=0.0, high=1.0)
  validation.positive_floats("slope_tol", config.slope_tol)
  validation.fractions("level", config.level, low=0.0, high=1.0)
  validation.positive_ints("num_boot", config.num_boot, minimum=10)


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  return [dict(d=d, sigma=config.sigma, k=config.k, poly=p)
          for d in config.ds for p in range(config.num_polys)]


def lipschitz(sigma: str) -> float:
  """The theorem's L for σ on [-1, 1]: max(max|σ'|, |σ(0)|) (it needs |σ(0)| ≤ L)."""
  act = activations.get(sigma)
  return max(activations.lipschitz_on(act, 1.0), act.sigma0)


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array) -> list[dict]:
  d, k, sigma = cell["d"], cell["k"], cell["sigma"]
  act = activations.get(sigma)
  K = act.degree if act.degree is not None else config.truncation_degree
  k_poly, k_sph, k_ball, k_seeds = jax.random.split(key, 4)
  k_alpha, k_sup = jax.random.split(k_poly)
  cons = legendre.prepare(sigma, d, k, K)
  alpha = integral_rep.random_alpha(k_alpha, jnp.ones(len(cons.i_sd), bool), config.num_terms)
  b_t = legendre.coefficients(cons, alpha)
  sup_g = float(_sup_g(k_sup, jnp.asarray(cons.j_td), b_t, num=config.num_sup,
                       chunk=_SUP_CHUNK, K=K))
  g_abs_sum = float(jnp.sum(jnp.abs(b_t)))
  x = distributions.sphere_and_ball(k_sph, k_ball, config.num_test, d, dtype=jnp.float64)
  f = legendre.integral(sigma, cons.j_td, b_t, x)
  residual = float(jnp.max(jnp.abs(f - legendre.polynomial_eval(cons.i_sd, alpha, x))))
  r_max = 2**config.log2_r_max
  fn = functools.partial(_one_seed, sigma=sigma, d=d, k=k, K=K, r_max=r_max, chunk=config.chunk)
  errs = sweep.over_seeds(fn, sweep.seed_keys(k_seeds, config.num_seeds), x, f, b_t)
  lip = lipschitz(sigma)
  factor = 4.0 + math.sqrt(2.0 * math.log(1.0 / config.delta))
  rows = []
  for j in range(config.log2_r_min, config.log2_r_max + 1):
    r = 2**j
    bound = lip * sup_g / math.sqrt(r) * factor
    for s in range(config.num_seeds):
      err = float(errs[s, r // config.chunk - 1])
      rows.append(dict(cell, K=K, r=r, seed=s, sup_error=err, bound=bound,
                       bound_upper=lip * g_abs_sum / math.sqrt(r) * factor,
                       sup_g=sup_g, g_abs_sum=g_abs_sum,
                       alpha_max=float(jnp.max(jnp.abs(alpha))), lipschitz=lip,
                       residual=residual))
  return rows


def bound_outcome(num_out: int, num_out_certified: int, num_seeds: int, *, delta: float,
                  alpha: float) -> tuple[str, float]:
  """The bound at one (d, P, r): holds when at most a fraction δ of the seeds exceed the
  bound with the lower C; else fails when the seeds certainly above it (upper C) are so
  many that a binomial(num_seeds, δ) count reaches them with chance < alpha; else
  inconclusive. Returns (outcome, that chance)."""
  chance = float(scipy.stats.binom.sf(num_out_certified - 1, num_seeds, delta))
  if num_out <= delta * num_seeds:
    return "holds", chance
  return ("fails" if chance < alpha else "inconclusive"), chance


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """Thm 3.3's bound at δ per (d, P, r); slope of log(mean sup-error) vs log r near −1/2 per
  (d, P); the sup-error as a fraction of the bound (reported, not judged).

  The bound part is judged per (d, P, r) by bound_outcome at alpha = (1 − level)/(number of
  (d, P, r)) (Bonferroni). The slope part fails when its seed-bootstrap interval (at
  `level`) lies outside −1/2 ± slope_tol, holds when the slope is inside, and is
  inconclusive otherwise; fewer than three r values give no rate: inconclusive."""
  f = results.to_float
  groups: dict[tuple, list[dict]] = {}
  for r in rows:
    groups.setdefault((r["d"], r.get("poly", 0)), []).append(r)
  num_tests = sum(len({r["r"] for r in rs}) for rs in groups.values())
  alpha = (1 - config.level) / max(num_tests, 1)
  band = (-0.5 - config.slope_tol, -0.5 + config.slope_tol)
  out_cells, slope_parts, bound_parts, reasons = [], [], [], []
  for (d, poly), rs in sorted(groups.items()):
    rvals = sorted({r["r"] for r in rs})
    seeds = sorted({r["seed"] for r in rs})
    by = {(r["seed"], r["r"]): r for r in rs}
    err_sj = np.array([[f(by[s, rv]["sup_error"]) for rv in rvals] for s in seeds])
    frac_sj = np.array([[f(by[s, rv]["sup_error"]) / f(by[s, rv]["bound"]) for rv in rvals]
                        for s in seeds])
    # A seed's errors at all r come from one nested sequence of features: the bootstrap
    # resamples whole seeds.
    slope, lo, hi, _, _ = stats.paired_loglog_rate(rvals, err_sj, level=config.level,
                                                   num_boot=config.num_boot, seed=0)
    tag = f"d={d}, P{poly}"
    if len(rvals) < 3:
      slope_parts.append("inconclusive")
      reasons.append(f"{tag}: only {len(rvals)} values of r, fewer than three for a rate")
    elif band[0] <= slope <= band[1]:
      slope_parts.append("holds")
    elif hi < band[0] or lo > band[1]:
      slope_parts.append("fails")
      reasons.append(f"{tag}: slope {slope:.3f}, {config.level:.0%} seed-bootstrap interval "
                     f"[{lo:.3f}, {hi:.3f}], outside −0.5 ± {config.slope_tol}")
    else:
      slope_parts.append("inconclusive")
      reasons.append(f"{tag}: slope {slope:.3f} is outside −0.5 ± {config.slope_tol}, but its "
                     f"{config.level:.0%} seed-bootstrap interval [{lo:.3f}, {hi:.3f}] reaches "
                     f"into it: {len(seeds)} seeds cannot tell")
    per_r = []
    for j, rv in enumerate(rvals):
      out = int(sum(f(by[s, rv]["sup_error"]) > f(by[s, rv]["bound"]) for s in seeds))
      cert = int(sum(f(by[s, rv]["sup_error"]) > f(by[s, rv]["bound_upper"]) for s in seeds))
      outcome, chance = bound_outcome(out, cert, len(seeds), delta=config.delta, alpha=alpha)
      bound_parts.append(outcome)
      per_r.append(outcome)
      if outcome == "fails":
        reasons.append(f"{tag}, r={rv}: {cert} of {len(seeds)} seeds above the bound even with "
                       f"C = Σ|b_J|; at rate δ = {config.delta} that has chance {chance:.2g} < "
                       f"{alpha:.2g} = (1 − level)/{num_tests}")
      elif outcome == "inconclusive":
        reasons.append(f"{tag}, r={rv}: {out} of {len(seeds)} seeds above the bound (more than "
                       f"δ = {config.delta} allows), {cert} certainly; chance {chance:.2g} ≥ "
                       f"{alpha:.2g}: {len(seeds)} seeds cannot tell")
    r0 = rs[0]
    out_cells.append(dict(
        d=d, poly=poly, slope=slope, slope_interval=[lo, hi], r=rvals,
        mean_sup_error=[float(m) for m in err_sj.mean(0)],
        bound=[f(by[seeds[0], rv]["bound"]) for rv in rvals],
        fraction_max=float(frac_sj.max()), fraction_median=float(np.median(frac_sj)),
        fraction_max_by_r=[float(v) for v in frac_sj.max(0)],
        frac_seeds_within_bound=float(np.mean(err_sj <= np.array(
            [[f(by[s, rv]["bound"]) for rv in rvals] for s in seeds]))),
        bound_outcomes=per_r, sup_g=f(r0["sup_g"]), g_abs_sum=f(r0["g_abs_sum"]),
        alpha_max=f(r0.get("alpha_max", float("nan"))), lipschitz=f(r0["lipschitz"]),
        residual=f(r0["residual"])))
  verdict = verdicts.combine(bound_parts + slope_parts)
  act = activations.get(config.sigma)
  ds = sorted({c["d"] for c in out_cells})
  worst = max(out_cells, key=lambda c: c["fraction_max"])
  slopes = [c["slope"] for c in out_cells]
  by_d = {d: [c for c in out_cells if c["d"] == d] for d in ds}
  return dict(
      claim=("Thm 3.3: with u_i = g(w_i)/r, for each r, with probability > 1 − δ over the "
             "features, sup_{‖x‖≤1}|Σu_iσ(<w_i,x>) − f(x)| ≤ LC/√r·(4 + √(2 log(1/δ))); the "
             "error rate is r^{-1/2}."),
      prediction=(f"at each (d, P, r) at most a fraction δ = {config.delta} of the feature "
                  f"draws above the bound; slope of log mean sup-error vs log r in −0.5 ± "
                  f"{config.slope_tol}"),
      measured=(
          f"{len(out_cells)} (d, P) over d = {ds}, {len({c['poly'] for c in out_cells})} P "
          f"per d: sup-error / bound at most {worst['fraction_max']:.3g} (d={worst['d']}, "
          f"P{worst['poly']}), median "
          f"{np.median([c['fraction_median'] for c in out_cells]):.3g}; per d the largest "
          + ", ".join(f"{max(c['fraction_max'] for c in by_d[d]):.3g} (d={d})" for d in ds)
          + f"; bound at δ: holds at {bound_parts.count('holds')} of {len(bound_parts)} "
          f"(d, P, r), fails at {bound_parts.count('fails')}; slopes "
          f"{min(slopes):.3f} … {max(slopes):.3f} ({config.level:.0%} seed-bootstrap "
          f"intervals within [{min(c['slope_interval'][0] for c in out_cells):.3f}, "
          f"{max(c['slope_interval'][1] for c in out_cells):.3f}]), in the band at "
          f"{slope_parts.count('holds')} of {len(slope_parts)}"),
      **verdicts.fields(
          verdict, reasons=reasons,
          would_fail_if=(
              "at some (d, P, r) more feature draws above LC/√r·(4 + √(2 log(1/δ))) with "
              f"C = Σ|b_J| ≥ sup|g| than a probability δ = {config.delta} per draw makes "
              f"likely (binomial chance < (1 − level)/(number of (d, P, r)) = {alpha:.2g}); "
              f"or at some (d, P), the slope of log(mean sup-error) against log r outside "
              f"−0.5 ± {config.slope_tol} with its {config.level:.0%} seed-bootstrap interval "
              "also outside that band"),
          departures=(
              "C is bracketed, not computed: 'within the bound' uses the searched sup|g| (a "
              f"lower estimate: a search over {config.num_sup} points and ascent), 'above' "
              "uses Σ|b_J|; the sup over ‖x‖ ≤ 1 is a maximum over "
              f"{config.num_test} test points (half on the unit sphere, half in the ball), a "
              "lower estimate, so 'within the bound' is not certified; r = "
              f"2^{config.log2_r_min}..2^{config.log2_r_max} only, and the r values of a "
              "seed are prefixes of one feature sequence, not independent draws; "
              f"{config.num_seeds} draws per P; the rate is judged on the mean sup-error over "
              "draws (the theorem bounds each draw); feature sums in float32; "
              f"{config.num_polys} random P of degree ≤ {config.k} per d in {list(config.ds)}"
              + ("" if act.degree is not None else
                 f"; f is the integral of ĝ truncated at K = {config.truncation_degree}, not "
                 "the target polynomial P"))),
      slopes=slopes,
      fraction_max=worst["fraction_max"],
      frac_seeds_within_bound=min(c["frac_seeds_within_bound"] for c in out_cells),
      bound_tests=dict(holds=bound_parts.count("holds"), fails=bound_parts.count("fails"),
                       inconclusive=bound_parts.count("inconclusive"), alpha=alpha),
      constants=(f"L = max(max|σ'| on [-1,1], |σ(0)|) = {out_cells[0]['lipschitz']:.4g} "
                 f"({config.sigma}); C = searched sup|g| per P (Σ|b_J| for 'above'); "
                 f"δ = {config.delta}; u_i = g(w_i)/r as in the theorem"),
      test_points=f"{config.num_test} points: half on the unit sphere, half uniform in the unit ball",
      cells=out_cells,
  )


# ------------------------------------------------------------------------------ figure


def figure(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]) -> plt.Figure:
  """Per d: mean sup-error vs r for each P with its Thm 3.3 bound (dashed) and r^{-1/2};
  below, the sup-error as a fraction of the bound (max over draws) vs r."""
  cells = summary["cells"]
  ds = sorted({c["d"] for c in cells})
  fig, axes = plt.subplots(2, len(ds), figsize=(5.2 * len(ds), 8), squeeze=False)
  for col, d in enumerate(ds):
    ax, axf = axes[0, col], axes[1, col]
    cs = [c for c in cells if c["d"] == d]
    colors = plt.cm.tab10(np.arange(len(cs)) % 10)
    for c, color in zip(cs, colors):
      rv = np.asarray(c["r"], float)
      lo, hi = c["slope_interval"]
      ax.plot(rv, c["mean_sup_error"], "o-", color=color, ms=3,
              label=f"P{c['poly']}: slope {c['slope']:.2f} [{lo:.2f}, {hi:.2f}]")
      ax.plot(rv, c["bound"], "--", color=color, lw=1)
      axf.plot(rv, c["fraction_max_by_r"], "o-", color=color, ms=3,
               label=f"P{c['poly']}: C={c['sup_g']:.3g}")
    rv = np.asarray(cs[0]["r"], float)
    ax.plot(rv, cs[0]["mean_sup_error"][0] * np.sqrt(rv[0] / rv), "k:", lw=1,
            label=r"$\propto r^{-1/2}$")
    ax.set(xscale="log", yscale="log", xlabel="number of random features r",
           ylabel=f"sup-error (max over {config.num_test} x), mean over draws",
           title=f"{config.sigma}, d={d}, deg P ≤ {config.k}: dashed LC/√r(4+√(2log1/δ)), "
                 f"δ={config.delta}\n(slopes with {config.level:.0%} seed-bootstrap intervals)")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7)
    axf.axhline(1.0, color="r", lw=1, label="the bound")
    axf.set(xscale="log", yscale="log", xlabel="number of random features r",
            ylabel="sup-error / bound (max over draws)",
            title=f"d={d}: how tight the bound is (L = {cs[0]['lipschitz']:.3g})")
    axf.set_xscale("log", base=2)
    axf.legend(fontsize=7)
    for a in (ax, axf):
      a.title.set_fontsize(8)
  plots.title(fig, summary)
  return fig


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    figure=figure, row_id_fields=ROW_ID_FIELDS,
    claim="Thm 3.3 (random features approximate the integral at rate r^{-1/2})"))
