"""Thm 3.4: a polynomial P is an integral of σ(<w,x>) against a bounded g (Legendre products).

For each (σ, d, k, K) and each seed, a random P with Σ|α_I| = 1 (so |P(x)| ≤ 1 on the unit
ball): `num_terms` distinct monomials of degree ≤ k, drawn uniformly from those σ's Taylor
series supports (a_|I| ≠ 0, the theorem's hypothesis; `monomials = "supported"`) or from all
of them (`"all"`: a monomial with a_|I| = 0 has no representation, and the run shows it).
Coefficients U[-1, 1], then scaled. The construction (docs/theory.md "Integral representation
(Thm 3.4)") gives ĝ of degree K over P's supported part; per seed we record

  sup_g        a lower estimate of sup|ĝ| (uniform sample + cube vertices + projected ascent),
  g_abs_sum    Σ_J |b_J|, a rigorous upper bound on sup|ĝ| (|L_J| ≤ 1),
  g_l2         ‖ĝ‖₂ exactly; for polynomial σ with every a_n ≠ 0, a lower bound on sup|g| of
               every g that represents P,
  bound_k      the theorem's bound C_P(k) in k = the degree of P (config.bound_form), and
               bound_k_power / bound_k_binomial, both forms,
  residual     max over test points (half on the unit sphere, half in the ball) of
               |E_w[g(w)σ(<w,x>)] − P(x)|, the integral computed exactly (legendre.integral),
  residual_bound   (analytic σ) a rigorous upper bound on the residual's sup over the ball,
  unsupported_sup  max over the test points of |the part of P that σ cannot represent|.

Seeds go through sweep.over_seeds: each seed draws its polynomial and its sup-search points
from its own key; the residual's test points are shared by the seeds of a cell. Cells of one
(σ, d) share one compiled program: ĝ is written over all Legendre products of degree ≤ the
largest K of the config (the products a cell's K leaves out get b_J = 0) and P over all
monomials of degree ≤ max(ks) (a cell's k and the `monomials` setting mask the rest), so the
cell's numbers are inputs, not program constants.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections as mlc
import numpy as np

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

NAME = "integral_rep"
# The row fields that tell one cell's rows apart, in row-key order (Experiment.row_id_fields).
ROW_ID_FIELDS = ("sigma", "seed")


def random_alpha(key: jax.Array, mask_s: jax.Array, num_terms: int) -> jax.Array:
  """num_terms of the candidates where mask_s holds (all of them if fewer), coefficients
  U[-1, 1], scaled to Σ|α| = 1; zero elsewhere. [S] float64."""
  k_pick, k_coef = jax.random.split(key)
  mask_s = jnp.asarray(mask_s)
  S = mask_s.shape[0]
  m = min(num_terms, S)
  score = jnp.where(mask_s, jax.random.uniform(k_pick, (S,), jnp.float64), 2.0)
  chosen = jnp.argsort(score)[:m]
  coef = jax.random.uniform(k_coef, (m,), jnp.float64, -1.0, 1.0) * mask_s[chosen]
  alpha = jnp.zeros((S,), jnp.float64).at[chosen].set(coef)
  return alpha / jnp.sum(jnp.abs(alpha))


MONOMIALS = ("supported", "all")


class _Group(NamedTuple):
  """What the cells of one (σ, d) share: candidate monomials and Legendre products."""
  i_sd: np.ndarray            # every monomial of P, |I| ≤ k_max. int [S, d]
  supported_s: np.ndarray     # a_|I| ≠ 0: σ's Taylor series has the monomial's degree. [S]
  j_td: np.ndarray            # Legendre products of ĝ, |J| ≤ K_max. [T, d]
  k_max: int


@functools.lru_cache(maxsize=64)
def _group(sigma: str, d: int, k_max: int, K_max: int) -> _Group:
  a = activations.taylor_or_raise(activations.get(sigma), k_max)
  i_sd = legendre.multi_indices(d, k_max)
  return _Group(i_sd, np.array([a[int(n)] != 0 for n in i_sd.sum(1)]),
                legendre.multi_indices(d, K_max), k_max)


def _cell_inputs(sigma: str, d: int, k: int, K: int, group: _Group,
                 monomials: str = "supported") -> dict[str, np.ndarray]:
  """The cell's construction written over the group's monomials and products:
  map_ts (b = map_ts @ α; zero rows for |J| > K, zero columns for unsupported monomials and
  for |I| > k),
  mask_s (the monomials P may use: |I| ≤ k, and supported unless monomials = "all"),
  supported_s, and for polynomial σ q_st (the integral's coefficients q = q_st @ b)."""
  cons = legendre.prepare(sigma, d, k, K)
  row = {tuple(j): t for t, j in enumerate(group.j_td.tolist())}
  col = {tuple(i): s for s, i in enumerate(group.i_sd.tolist())}
  map_ts = np.zeros((len(group.j_td), len(group.i_sd)))
  map_ts[np.ix_([row[tuple(j)] for j in cons.j_td.tolist()],
                [col[tuple(i)] for i in cons.i_sd.tolist()])] = cons.map_ts
  allowed = group.supported_s | (monomials == "all")
  out = dict(map_ts=map_ts, mask_s=(group.i_sd.sum(1) <= k) & allowed,
             supported_s=group.supported_s.astype(np.float64))
  if activations.get(sigma).degree is not None:
    out["q_st"] = legendre.integral_poly_map(sigma, group.j_td)[1]
  return out


def _one_seed(key: jax.Array, key_p: jax.Array, x_nd: jax.Array, inputs: dict[str, jax.Array],
              *, sigma: str, d: int, k_max: int, K_max: int, num_terms: int, num_sup: int,
              chunk: int) -> dict[str, jax.Array]:
  """One random P (drawn from key_p) of the cell: its ĝ's sup (lower estimate, searched from
  key), Σ|b_J|, ‖ĝ‖₂, max |α_I|, and over the shared test points x [n, d] the residual
  max |E_w[g σ] − P|, max |P| and max |P's unsupported part|. Scalars."""
  group = _group(sigma, d, k_max, K_max)
  k_alpha, k_sup = key_p, key
  alpha_s = random_alpha(k_alpha, inputs["mask_s"], num_terms)
  unsup_s = alpha_s * (1.0 - inputs["supported_s"])
  b_t = jnp.matmul(inputs["map_ts"], alpha_s, precision=jax.lax.Precision.HIGHEST)
  sup_g = legendre.sup_g_estimate(k_sup, group.j_td, b_t, num=num_sup, chunk=chunk, K=K_max)
  if "q_st" in inputs:
    i_int = legendre.multi_indices(d, activations.get(sigma).degree)
    q_s = jnp.matmul(inputs["q_st"], b_t, precision=jax.lax.Precision.HIGHEST)

  def chunk_max(carry, x_cd):
    if "q_st" in inputs:
      fx = legendre.polynomial_eval(i_int, q_s, x_cd)
    else:
      fx = legendre.integral_exponential(sigma, group.j_td, b_t, x_cd, K=K_max)
    px = legendre.polynomial_eval(group.i_sd, alpha_s, x_cd)
    if group.supported_s.all():                       # σ supports every monomial: no such part
      ux = jnp.zeros_like(px)
    else:
      ux = legendre.polynomial_eval(group.i_sd, unsup_s, x_cd)
    new = (jnp.max(jnp.abs(fx - px)), jnp.max(jnp.abs(px)), jnp.max(jnp.abs(ux)))
    return tuple(jnp.maximum(c, v) for c, v in zip(carry, new)), None

  zero = jnp.zeros((), jnp.float64)
  (residual, p_sup, unsup_sup), _ = jax.lax.scan(chunk_max, (zero, zero, zero),
                                                 x_nd.reshape(-1, chunk, d))
  return dict(sup_g=sup_g, g_abs_sum=jnp.sum(jnp.abs(b_t)), g_l2=legendre.g_l2(group.j_td, b_t),
              residual=residual, p_sup=p_sup, unsupported_sup=unsup_sup,
              alpha_max=jnp.max(jnp.abs(alpha_s)),
              num_unsupported=jnp.sum(unsup_s != 0).astype(jnp.int32))


def _cell_numbers(key: jax.Array, p_root: jax.Array, *, sigma: str, d: int, k: int, K: int,
                  k_max: int, K_max: int, num_seeds: int, num_terms: int, num_sup: int,
                  num_test: int, chunk: int, monomials: str = "supported",
                  bound_form: str = "binomial") -> dict[str, np.ndarray]:
  """All seeds of one cell through sweep.over_seeds, with the k-form bounds and (analytic σ)
  the certified residual bound. Seed s's P comes from fold_in(p_root, s), so the cells of one
  (σ, d, k) that differ only in K see the same polynomials. [s] each."""
  k_sph, k_ball, k_seeds = jax.random.split(key, 3)
  x = distributions.sphere_and_ball(k_sph, k_ball, num_test, d, dtype=jnp.float64)
  inputs = _cell_inputs(sigma, d, k, K, _group(sigma, d, k_max, K_max), monomials)
  fn = functools.partial(_one_seed, sigma=sigma, d=d, k_max=k_max, K_max=K_max,
                         num_terms=num_terms, num_sup=num_sup, chunk=chunk)
  out = sweep.over_seeds(fn, sweep.seed_keys(k_seeds, num_seeds), x,
                         jax.tree.map(jnp.asarray, inputs),
                         per_seed=(sweep.seed_keys(p_root, num_seeds),))
  a_k = activations.coefficient_constant(activations.get(sigma), k)
  for form in legendre.BOUND_FORMS:
    out[f"bound_k_{form}"] = out["alpha_max"] * legendre.bound_g(1.0, a_k, d, k, form)
  out["bound_k"] = out[f"bound_k_{bound_form}"]
  if activations.get(sigma).degree is None:
    out["residual_bound"] = out["g_l2"] * legendre.truncation_residual_factor(sigma, d, K)
  return out


def validate(config: mlc.ConfigDict) -> None:
  sigmas = validation.one_of("sigmas", config.sigmas, activations.names())
  for s in sigmas:
    activations.require_analytic(s, field="sigmas")
  validation.positive_ints("ds", config.ds, minimum=1)
  ks = validation.positive_ints("ks", config.ks, minimum=1)
  trunc = validation.positive_ints("truncation_degrees", config.truncation_degrees)
  if max(trunc) < max(ks):
    raise validation.ConfigError("truncation_degrees",
                                 f"some K must be >= max(ks) = {max(ks)} (a cell needs K >= k)")
  for s in sigmas:
    deg = activations.get(s).degree
    if deg is None and s not in legendre.EXPONENTIAL_FORMS:
      raise validation.ConfigError(
          "sigmas", f"no exact integral for {s!r}; use a polynomial σ or one of "
          f"{sorted(legendre.EXPONENTIAL_FORMS)}")
    if deg is not None and deg < max(ks):
      raise validation.ConfigError("sigmas", f"polynomial {s!r} has degree {deg} < k")
  validation.one_of("monomials", config.monomials, MONOMIALS)
  validation.one_of("bound_form", config.bound_form, legendre.BOUND_FORMS)
  validation.positive_ints("num_seeds", config.num_seeds)
  validation.positive_ints("num_terms", config.num_terms)
  chunk = validation.positive_ints("chunk", config.chunk)[0]
  for field in ("num_sup", "num_test"):
    n = validation.positive_ints(field, config[field], minimum=chunk)[0]
    if n % chunk:
      raise validation.ConfigError(field, f"must be a multiple of chunk={chunk}, got {n}")
  validation.positive_floats("poly_tol", config.poly_tol)
  validation.positive_floats("trunc_tol", config.trunc_tol)


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  out = []
  for sigma in config.sigmas:
    deg = activations.get(sigma).degree
    for d in config.ds:
      for k in config.ks:
        for K in ([deg] if deg is not None else list(config.truncation_degrees)):
          if K >= k:                                 # ĝ of degree K carries P's moments
            out.append(dict(sigma=sigma, d=d, k=k, K=K))
  return out


def _degrees(config: mlc.ConfigDict, sigma: str) -> tuple[int, int]:
  """(max k, max K) over the config's cells of σ: the sizes its compiled program covers."""
  deg = activations.get(sigma).degree
  return max(config.ks), (deg if deg is not None else max(config.truncation_degrees))


def polynomial_root(config: mlc.ConfigDict, cell: dict[str, Any]) -> jax.Array:
  """The key the cell's polynomials come from: a function of (config.seed, σ, d, k) only, so
  every truncation degree K of an analytic σ is applied to the same P."""
  return experiments.cell_prng_key(jax.random.key(config.seed), NAME + "/polynomials",
                                   dict(sigma=cell["sigma"], d=cell["d"], k=cell["k"]))


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array) -> list[dict]:
  k_max, K_max = _degrees(config, cell["sigma"])
  out = _cell_numbers(key, polynomial_root(config, cell), sigma=cell["sigma"], d=cell["d"], k=cell["k"], K=cell["K"],
                      k_max=k_max, K_max=K_max, num_seeds=config.num_seeds,
                      num_terms=config.num_terms, num_sup=config.num_sup,
                      num_test=config.num_test, chunk=config.chunk,
                      monomials=config.monomials, bound_form=config.bound_form)
  conv = {"num_unsupported": int}
  return [dict(cell, seed=s, **{name: conv.get(name, float)(v[s]) for name, v in out.items()})
          for s in range(config.num_seeds)]


def l2_bounds_every_g(sigma: str) -> bool:
  """True when ‖ĝ‖₂ is a lower bound on sup|g| for every g that represents P: σ is a
  polynomial with a_n ≠ 0 for every n ≤ deg σ (then ĝ is every such g's L² projection)."""
  act = activations.get(sigma)
  if act.degree is None:
    return False
  return bool(np.all(activations.taylor_or_raise(act, act.degree) != 0))


def bound_outcome(row: dict) -> str:
  """The k-form bound for one representable P over polynomial σ: holds when the rigorous
  Σ|b_J| ≤ C_P(k) (our g meets it); fails when ‖ĝ‖₂ > C_P(k) and ‖ĝ‖₂ bounds every g (no g
  meets it); inconclusive otherwise."""
  f = results.to_float
  if f(row["g_abs_sum"]) <= f(row["bound_k"]):
    return "holds"
  if l2_bounds_every_g(row["sigma"]) and f(row["g_l2"]) > f(row["bound_k"]):
    return "fails"
  return "inconclusive"


def truncation_outcome(rows_over_K: list[dict], trunc_tol: float) -> tuple[str, int | None]:
  """Truncation at K for one P over analytic σ (rows: its K values): holds with the smallest
  K whose certified residual bound is ≤ trunc_tol and Σ|b_J| ≤ C_P(k); fails when at every K
  the measured residual (a lower estimate) is > trunc_tol or the searched sup|ĝ_K| (a lower
  estimate) is > C_P(k); inconclusive otherwise."""
  f = results.to_float
  ok = [r["K"] for r in rows_over_K
        if f(r["residual_bound"]) <= trunc_tol and f(r["g_abs_sum"]) <= f(r["bound_k"])]
  if ok:
    return "holds", min(ok)
  if all(f(r["residual"]) > trunc_tol or f(r["sup_g"]) > f(r["bound_k"]) for r in rows_over_K):
    return "fails", None
  return "inconclusive", None


def _fmt(values: list[float]) -> str:
  return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """Three parts, each inconclusive without data: (A) polynomial σ represents P exactly;
  (B) polynomial σ: sup|g| within the theorem's k-form bound C_P(k); (C) analytic σ: the
  truncation at K reaches residual ≤ trunc_tol within C_P(k) at some K of the config."""
  f = results.to_float
  table = stats.group_by(rows, "sigma", "d", "k", "K")
  cells_out = []
  for (sigma, d, k, K), rs in sorted(table.items()):
    c = dict(sigma=sigma, d=d, k=k, K=K, num_seeds=len(rs),
             sup_g_median=float(np.median([f(r["sup_g"]) for r in rs])),
             sup_g_max=max(f(r["sup_g"]) for r in rs),
             g_abs_sum_max=max(f(r["g_abs_sum"]) for r in rs),
             g_l2_max=max(f(r["g_l2"]) for r in rs),
             bound_k_median=float(np.median([f(r["bound_k"]) for r in rs])),
             bound_k_min=min(f(r["bound_k"]) for r in rs),
             sup_over_bound_max=max(f(r["sup_g"]) / f(r["bound_k"]) for r in rs),
             abs_sum_over_bound_max=max(f(r["g_abs_sum"]) / f(r["bound_k"]) for r in rs),
             l2_over_bound_max=max(f(r["g_l2"]) / f(r["bound_k"]) for r in rs),
             residual_max=max(f(r["residual"]) for r in rs),
             residual_median=float(np.median([f(r["residual"]) for r in rs])),
             num_unrepresentable=sum(int(r.get("num_unsupported", 0)) > 0 for r in rs))
    if "residual_bound" in rs[0]:
      c["residual_bound_max"] = max(f(r["residual_bound"]) for r in rs)
    cells_out.append(c)
  is_poly = {s: activations.get(s).degree is not None for s in {r["sigma"] for r in rows}}
  poly_rows = [r for r in rows if is_poly[r["sigma"]]]
  analytic_rows = [r for r in rows if not is_poly[r["sigma"]]]
  reasons: list[str] = []

  # (A) exactness, polynomial σ. A P with a monomial σ does not support has no representation.
  represented = [r for r in poly_rows if int(r.get("num_unsupported", 0)) == 0]
  unrepresentable = [r for r in poly_rows if int(r.get("num_unsupported", 0)) > 0]
  poly_res = max((f(r["residual"]) for r in represented), default=0.0)
  for r in unrepresentable:
    a = activations.taylor_or_raise(activations.get(r["sigma"]), r["k"])
    missing = [n for n in range(r["k"] + 1) if a[n] == 0]
    reasons.append(
        f"{r['sigma']}, d={r['d']}, k={r['k']}, seed {r['seed']}: no representation exists: "
        f"σ has a_n = 0 for n in {missing} and P has {r['num_unsupported']} monomial(s) of "
        f"those degrees (max over the test points of that part {f(r['unsupported_sup']):.3g}); "
        f"residual {f(r['residual']):.3g} > poly_tol = {config.poly_tol:g}")
  bad_exact = [r for r in represented if not f(r["residual"]) <= config.poly_tol]
  reasons += [f"{r['sigma']}, d={r['d']}, k={r['k']}, seed {r['seed']}: residual "
              f"{f(r['residual']):.3g} > poly_tol = {config.poly_tol:g}" for r in bad_exact]
  if not poly_rows:
    exact_part = "inconclusive"
    reasons.append("no polynomial σ in the config: exactness was not measured")
  else:
    exact_part = verdicts.judge(not bad_exact and not unrepresentable)

  # (B) the k-form bound, polynomial σ, representable P.
  bound_rows = stats.group_by(represented, "sigma", "d", "k")
  bound_cells, bound_parts = [], []
  for (sigma, d, k), rs in sorted(bound_rows.items()):
    outs = [bound_outcome(r) for r in rs]
    bound_parts += outs
    bc = dict(sigma=sigma, d=d, k=k, K=rs[0]["K"], holds=outs.count("holds"),
              fails=outs.count("fails"), inconclusive=outs.count("inconclusive"),
              abs_sum_over_bound_max=max(f(r["g_abs_sum"]) / f(r["bound_k"]) for r in rs),
              sup_over_bound_max=max(f(r["sup_g"]) / f(r["bound_k"]) for r in rs),
              l2_over_bound_max=max(f(r["g_l2"]) / f(r["bound_k"]) for r in rs))
    bound_cells.append(bc)
    if bc["fails"]:
      reasons.append(f"{sigma}, d={d}, k={k}: in {bc['fails']} of {len(rs)} P, ‖ĝ‖₂ (a lower "
                     "bound on sup|g| of every representing g) exceeds C_P(k), up to "
                     f"{bc['l2_over_bound_max']:.3g}×: no g meets the theorem's bound")
    if bc["inconclusive"]:
      reasons.append(
          f"{sigma}, d={d}, k={k} (ĝ of degree {bc['K']}): {bc['inconclusive']} of {len(rs)} P "
          f"undecided: Σ|b_J| up to {bc['abs_sum_over_bound_max']:.3g}× C_P(k), ‖ĝ‖₂ ≤ "
          f"{bc['l2_over_bound_max']:.3g}× C_P(k); the searched sup|ĝ| reaches "
          f"{bc['sup_over_bound_max']:.3g}× C_P(k)"
          + (" (this construction misses the bound; another g might not)"
             if bc["sup_over_bound_max"] > 1 else ""))
  if not represented:
    bound_part = "inconclusive"
    reasons.append("no representable P over a polynomial σ: the k-form bound was not measured")
  else:
    bound_part = verdicts.combine(bound_parts)

  # (C) analytic σ: the truncation at K, against trunc_tol and C_P(k).
  by_p = stats.group_by(analytic_rows, "sigma", "d", "k", "seed")
  trunc_cells: dict[tuple, dict] = {}
  trunc_parts = []
  for (sigma, d, k, seed), rs in sorted(by_p.items()):
    rs = sorted(rs, key=lambda r: r["K"])
    outcome, k_ok = truncation_outcome(rs, config.trunc_tol)
    trunc_parts.append(outcome)
    tc = trunc_cells.setdefault((sigma, d, k), dict(
        sigma=sigma, d=d, k=k, Ks=[r["K"] for r in rs], holds=0, fails=0, inconclusive=0,
        first_K=[]))
    tc[outcome] += 1
    tc["first_K"].append(k_ok)
  trunc_out = []
  for (sigma, d, k), tc in sorted(trunc_cells.items()):
    cs = sorted((c for c in cells_out if (c["sigma"], c["d"], c["k"]) == (sigma, d, k)),
                key=lambda c: c["K"])
    res = [c["residual_max"] for c in cs]
    sups = [c["sup_g_median"] for c in cs]
    tc.update(residual_max=res, residual_bound_max=[c["residual_bound_max"] for c in cs],
              sup_g_median=sups, sup_g_max=[c["sup_g_max"] for c in cs],
              bound_k_median=cs[0]["bound_k_median"],
              sup_over_bound_max=[c["sup_over_bound_max"] for c in cs],
              residual_falls=all(b < a for a, b in zip(res, res[1:])),
              sup_growth_per_K=(None if len(cs) < 2 else float(
                  (sups[-1] / sups[0]) ** (1.0 / (cs[-1]["K"] - cs[0]["K"])))))
    trunc_out.append(tc)
    n = tc["holds"] + tc["fails"] + tc["inconclusive"]
    if tc["fails"]:
      reasons.append(
          f"{sigma}, d={d}, k={k}: in {tc['fails']} of {n} P no K in {tc['Ks']} has residual ≤ "
          f"trunc_tol = {config.trunc_tol:g} within C_P(k): residual (max over seeds) "
          f"{_fmt(res)}, searched sup|ĝ_K|/C_P(k) {_fmt(tc['sup_over_bound_max'])}")
    if tc["inconclusive"]:
      reasons.append(
          f"{sigma}, d={d}, k={k}: {tc['inconclusive']} of {n} P undecided over K = {tc['Ks']}: "
          f"certified residual bound {_fmt(tc['residual_bound_max'])} (measured {_fmt(res)}) "
          f"against trunc_tol = {config.trunc_tol:g}, searched sup|ĝ_K|/C_P(k) "
          f"{_fmt(tc['sup_over_bound_max'])}")
  if not trunc_parts:
    trunc_part = "inconclusive"
    reasons.append("no analytic σ in the config: the truncation at K was not measured")
  else:
    trunc_part = verdicts.combine(trunc_parts)

  # Reported, not judged: growth of sup|g| in d against the bound's, per (σ, k, K).
  growth = []
  for sigma, k, K in sorted({(c["sigma"], c["k"], c["K"]) for c in cells_out}):
    cs = sorted((c for c in cells_out if (c["sigma"], c["k"], c["K"]) == (sigma, k, K)),
                key=lambda c: c["d"])
    growth.append(dict(
        sigma=sigma, k=k, K=K, ds=[c["d"] for c in cs],
        sup_g_median=[c["sup_g_median"] for c in cs],
        bound_k_median=[c["bound_k_median"] for c in cs],
        sup_g_slope_in_log_d=stats.loglog_slope([c["d"] for c in cs],
                                                [c["sup_g_median"] for c in cs]),
        bound_slope_in_log_d=stats.loglog_slope([c["d"] for c in cs],
                                                [c["bound_k_median"] for c in cs])))
  verdict = verdicts.combine([exact_part, bound_part, trunc_part])
  analytic_sigmas = sorted({r["sigma"] for r in analytic_rows})
  poly_sigmas = sorted({r["sigma"] for r in poly_rows})
  n_b = len(bound_parts)
  n_t = len(trunc_parts)
  worst_trunc = max((max(t["sup_over_bound_max"]) for t in trunc_out), default=float("nan"))
  growth_k = [t["sup_growth_per_K"] for t in trunc_out if len(t["Ks"]) >= 2]
  form = config.bound_form
  measured = (
      f"polynomial σ ({', '.join(poly_sigmas) or 'none'}): "
      + (f"max residual {poly_res:.3g} over {len(represented)} representable P" if represented
         else "no representable P")
      + (f", {len(unrepresentable)} P with unsupported monomials have no representation "
         f"(residual ≥ {min(f(r['residual']) for r in unrepresentable):.3g})"
         if unrepresentable else "")
      + f"; k-form bound C_P(k) ({form}): holds {bound_parts.count('holds')}, undecided "
      f"{bound_parts.count('inconclusive')}, fails {bound_parts.count('fails')} of {n_b} P"
      + (f" (largest Σ|b_J|/C_P(k) = {max(b['abs_sum_over_bound_max'] for b in bound_cells):.3g},"
         f" searched sup|ĝ|/C_P(k) = {max(b['sup_over_bound_max'] for b in bound_cells):.3g}, "
         f"‖ĝ‖₂/C_P(k) = {max(b['l2_over_bound_max'] for b in bound_cells):.3g})"
         if bound_cells else "")
      + f"; analytic σ ({', '.join(analytic_sigmas) or 'none'}), truncation at K: "
      f"{trunc_parts.count('holds')} of {n_t} (σ, d, k, P) reach residual ≤ "
      f"{config.trunc_tol:g} within C_P(k) at some K, {trunc_parts.count('fails')} cannot, "
      f"{trunc_parts.count('inconclusive')} undecided"
      + (f"; sup|ĝ_K| grows ×{np.median(growth_k):.2g} per unit of K (median over (σ, d, k)) "
         f"while C_P(k) is fixed; largest searched sup|ĝ_K|/C_P(k) = {worst_trunc:.3g}"
         if growth_k else ""))
  return dict(
      claim=(
          "Thm 3.4: every polynomial P of degree ≤ k whose monomials σ supports is "
          "E_w[g(w)σ(<w,x>)] for a g with sup|g| ≤ C_P(k) (bound in k, the degree of P). "
          "Tested as stated for polynomial σ. For analytic σ with infinitely many a_n ≠ 0 the "
          "stated equality has no g in L² (Müntz–Szász); what is tested instead is the "
          "truncation at K: ĝ_K of degree K leaves a residual, and the statement is that some "
          f"K of the config has residual ≤ trunc_tol = {config.trunc_tol:g} with "
          "sup|ĝ_K| ≤ C_P(k), the form Thm 3.1's error budget can use."),
      prediction=(f"residual ≤ {config.poly_tol:g} for polynomial σ; sup|g| ≤ C_P(k) "
                  f"({form} form); for analytic σ, some K with certified residual ≤ "
                  f"{config.trunc_tol:g} and Σ|b_J| ≤ C_P(k)"),
      measured=measured,
      **verdicts.fields(
          verdict, reasons=reasons,
          would_fail_if=(
              f"for a polynomial σ, a residual max_x|E_w[gσ] − P| above poly_tol = "
              f"{config.poly_tol:g} for some P (which is what a P with a monomial σ does not "
              "support gives: no representation exists), or some P whose ‖ĝ‖₂, a lower bound "
              "on sup|g| of every g that represents it, exceeds the theorem's C_P(k); for an "
              "analytic σ, some P for which every truncation degree K of the config has a "
              f"measured residual above trunc_tol = {config.trunc_tol:g} or a searched "
              "sup|ĝ_K| above C_P(k)"),
          departures=(
              f"random P, not every P: {config.num_seeds} per cell, each with "
              f"{config.num_terms} random monomials ({config.monomials}); a finite grid (d in "
              f"{list(config.ds)}, k in {list(config.ks)}); the residual is a maximum over "
              f"{config.num_test} test points (half on the unit sphere, half in the ball), not "
              "a sup over the ball; sup|g| is bracketed, not computed: Σ|b_J| above, a search "
              f"over {config.num_sup} points and ascent below, and ‖ĝ‖₂ below for every g; the "
              "bound's constants are our reading of the proof; for analytic σ "
              f"({', '.join(analytic_sigmas) or 'none here'}) the theorem's equality is "
              f"replaced by the truncation at K in {list(config.truncation_degrees)}, only "
              "these K are tried"
              + ("" if all(k in config.truncation_degrees for k in config.ks) else
                 " (not K = k for every k, where the triangle inequality gives Σ|b_J| ≤ "
                 "C_P(k))")
              + ", and the residual is certified by a Cauchy–Schwarz bound that is far "
              "above the measured residual")),
      poly_residual_max=poly_res,
      num_unrepresentable=len(unrepresentable),
      bound_parts=dict(holds=bound_parts.count("holds"), fails=bound_parts.count("fails"),
                       inconclusive=bound_parts.count("inconclusive")),
      truncation_parts=dict(holds=trunc_parts.count("holds"), fails=trunc_parts.count("fails"),
                            inconclusive=trunc_parts.count("inconclusive")),
      parts=dict(exact=exact_part, bound=bound_part, truncation=trunc_part),
      constants=("C_P(k) = |P|·A_k·(3(1+√2))^k·C(d+k, k)·d^{k/2} (binomial) or with (d+1)^k "
                 "(power), |P| = max|α_I|, A_k = max 1/|a_n| over supported n ≤ k; residual "
                 "bound ‖ĝ_K‖₂·M_{K+1}/(K+1)!·√((2K+1)!!/(3d)^{K+1}) (docs/theory.md "
                 "\"Integral representation (Thm 3.4)\")"),
      polynomial=(f"num_terms random monomials of degree ≤ k ({config.monomials}), "
                  "coefficients U[-1,1], scaled to Σ|α_I| = 1 (|P| ≤ 1 on the unit ball)"),
      bound_check=bound_cells,
      truncation=trunc_out,
      sup_growth=growth,
      cells=cells_out,
  )


# ------------------------------------------------------------------------------ figure


def figure(config: mlc.ConfigDict, rows: list[dict], summary: dict[str, Any]) -> plt.Figure:
  """Top: for the first analytic σ, sup|ĝ_K| against K per d with the theorem's k-form bound
  C_P(k) (dashed, flat in K), one panel per k. Bottom: the truncation residual against K
  (measured and certified) with trunc_tol; polynomial σ: sup|g| against d with C_P(k) and the
  all-g lower bound ‖ĝ‖₂; the residual per P, unrepresentable P marked."""
  cells = summary["cells"]
  analytic = [c for c in cells if "residual_bound_max" in c]
  poly = [c for c in cells if "residual_bound_max" not in c]
  sig_a = sorted({c["sigma"] for c in analytic})
  ks_a = sorted({c["k"] for c in analytic}) or [None]
  ncol = max(len(ks_a), 3)
  fig, axes = plt.subplots(2, ncol, figsize=(5.2 * ncol, 9.5), squeeze=False)
  ds = sorted({c["d"] for c in analytic})
  dcol = dict(zip(ds, plt.cm.plasma(np.linspace(0, 0.85, max(len(ds), 1)))))
  for ax, k in zip(axes[0], ks_a):
    if k is None:
      ax.text(0.5, 0.5, "no analytic σ in this run", ha="center", va="center",
              transform=ax.transAxes)
      continue
    for d in ds:
      cs = sorted((c for c in analytic if (c["sigma"], c["d"], c["k"]) == (sig_a[0], d, k)),
                  key=lambda c: c["K"])
      if not cs:
        continue
      ax.plot([c["K"] for c in cs], [c["sup_g_median"] for c in cs], "o-", color=dcol[d],
              ms=4, label=f"d={d}")
      ax.axhline(cs[0]["bound_k_median"], color=dcol[d], ls="--", lw=0.9)
    ax.set(yscale="log", xlabel="truncation degree K of ĝ",
           ylabel="searched sup|ĝ_K| (median over P)",
           title=f"{sig_a[0]}, deg P ≤ k = {k}: sup|ĝ_K| (o) grows with K;\nC_P(k) "
                 f"({config.bound_form}, dashed) does not")
    ax.legend(fontsize=7, ncol=2)
  for ax in axes[0][len(ks_a):]:
    ax.axis("off")
  ax2, ax3, ax4 = axes[1][:3]
  for ax in axes[1][3:]:
    ax.axis("off")
  if analytic:
    k_lo = min(c["k"] for c in analytic)
    marks = dict(zip(sig_a, ["o", "s", "^", "D"]))
    for sigma in sig_a:
      for d in ds:
        cs = sorted((c for c in analytic if (c["sigma"], c["d"], c["k"]) == (sigma, d, k_lo)),
                    key=lambda c: c["K"])
        if not cs:
          continue
        K = [c["K"] for c in cs]
        ax2.plot(K, [max(c["residual_max"], 1e-18) for c in cs], marks[sigma] + "-",
                 color=dcol[d], ms=4, label=f"d={d}" if sigma == sig_a[0] else None)
        ax2.plot(K, [c["residual_bound_max"] for c in cs], marks[sigma] + ":", color=dcol[d],
                 ms=3, mfc="none", lw=0.8)
    ax2.axhline(config.trunc_tol, color="k", lw=1, ls="--",
                label=f"trunc_tol = {config.trunc_tol:g}")
    ax2.set(yscale="log", xlabel="truncation degree K of ĝ",
            ylabel="residual sup_x |E gσ − P| (max over P)",
            title=f"truncation residual, k={k_lo} ({', '.join(f'{s} {marks[s]}' for s in sig_a)})"
                  ":\nmeasured (solid), certified bound (dotted)")
    ax2.legend(fontsize=7, ncol=2)
  else:
    ax2.text(0.5, 0.5, "no analytic σ in this run", ha="center", va="center",
             transform=ax2.transAxes)
  ks = sorted({c["k"] for c in poly})
  kcol = dict(zip(ks, plt.cm.viridis(np.linspace(0, 0.8, max(len(ks), 1)))))
  for sigma in sorted({c["sigma"] for c in poly}):
    for k in ks:
      cs = sorted((c for c in poly if (c["sigma"], c["k"]) == (sigma, k)), key=lambda c: c["d"])
      if not cs:
        continue
      d = [c["d"] for c in cs]
      ax3.plot(d, [c["sup_g_median"] for c in cs], "o-", color=kcol[k], label=f"{sigma}, k={k}")
      ax3.plot(d, [c["g_l2_max"] for c in cs], "v:", color=kcol[k], ms=3, lw=0.8)
      ax3.plot(d, [c["bound_k_median"] for c in cs], "s--", color=kcol[k], ms=3, lw=1)
  if poly:
    ax3.set(yscale="log", xlabel="dimension d", ylabel="sup|g| (median over P)",
            title=f"polynomial σ (ĝ of degree deg σ): searched sup|ĝ| (o), C_P(k) (■, "
                  f"{config.bound_form}),\n‖ĝ‖₂ (▽, max; below sup|g| of every g)")
    ax3.legend(fontsize=7)
    rep = [r for r in rows if r["sigma"] in {c["sigma"] for c in poly}]
    ok = [r for r in rep if int(r.get("num_unsupported", 0)) == 0]
    bad = [r for r in rep if int(r.get("num_unsupported", 0)) > 0]
    jit = {k: 0.08 * (i - (len(ks) - 1) / 2) for i, k in enumerate(ks)}
    if ok:
      ax4.plot([r["d"] + jit[r["k"]] for r in ok], [max(r["residual"], 1e-18) for r in ok],
               "o", color="tab:blue", ms=4, label="P within the hypothesis")
    if bad:
      ax4.plot([r["d"] + jit[r["k"]] for r in bad], [r["residual"] for r in bad], "x",
               color="tab:red", ms=7, label="P with a monomial σ lacks: no representation")
    ax4.axhline(config.poly_tol, color="k", lw=1, ls="--", label=f"poly_tol = {config.poly_tol:g}")
    ax4.set(yscale="log", xlabel="dimension d", ylabel="residual max_x |E gσ − P|",
            title="polynomial σ: residual per P")
    ax4.legend(fontsize=7)
  else:
    for ax in (ax3, ax4):
      ax.text(0.5, 0.5, "no polynomial σ in this run", ha="center", va="center",
              transform=ax.transAxes)
  for ax in axes.flat:
    ax.title.set_fontsize(7.5)
  plots.title(fig, summary)
  return fig


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    figure=figure, row_id_fields=ROW_ID_FIELDS,
    claim="Thm 3.4 (Legendre integral representation)"))
