"""Section 2: lazy training. Wide nets barely move W, and then the net is its linearisation.

Part "lazy": the polynomial task of `polynomial_sgd` (x uniform in the unit ball, y =
sign(P(x)), hinge loss, batch 1, U_0 = 0, Xavier cube W_0) with σ = ReLU and an analytic σ,
a fixed number of steps and η = lr_times_r / r (the theory's η ∝ 1/r, PAPER §3.2). Per
width: ‖W_T − W_0‖_F/‖W_0‖_F, the ReLU sign-flip fraction on a probe set, and the gap
‖N_full − N_lin‖/‖N_full‖ (RMS over the probe) between the full net and its W-linearised
twin trained on the same samples. Training runs in float64 here: at large r one step moves
w_i by ~r^{-2}, below float32 resolution of ‖w_i‖ ~ 1 (W would not move at all).

Part "neuron": the hard neuron of PAPER §4.3 (rfjax.experiments.neuron_gd.target_specs):
y = [<w*, x> − c]_+ with ‖w*‖ = R = d and the ψ offset c nearest kink·R, divided by R
(relative errors are scale-free), x ~ N(0, I_d). The net gets a bias through a constant
input coordinate, x̃ = (x, 1). Squared loss, batch `neuron_batch`; metric: relative test
error E(N − y)²/E y². Step sizes (`neuron_step_sizes`, c = neuron_lr_times_r):
- "mean_field" (default): write u_i = a_i/r, N = (1/r) Σ a_i σ(<w_i, x̃>), and take the
  mean-field SGD step θ_i ← θ_i − c·r·∇_{θ_i} L for every neuron θ_i = (w_i, a_i): each
  neuron moves by a width-independent amount (μP for two layers). On (W, U) that is
  η_U = c/r (as in the lazy scaling) and η_W = c·r, so w_i moves by η_W·|u_i| = O(c): the
  first layer learns features at every width.
- "lazy": η_W = η_U = c/r, the theory's scaling of the first part (W barely moves).
All three regimes get the same (η_W, η_U) — the model is the only difference (random
features ignores η_W: W is frozen). The lazy part always uses the lazy scaling.

Beside the trained twins, each seed records the best any readout of their fixed features
can do (`best_fit_error`, relative): exact population least squares over the frozen ReLU
features for random features, and in-sample least squares over the r(d+1) coupling
features 1{<w0_i, x̃> > 0}·x̃_j for the linearised net (whose model is linear in them; the
fit is skipped above `neuron_lin_fit_max_features`). The contrast holds when the full net
gets below `neuron_tolerance` while both trained twins stay above it, and below both best
fits. The summary also gives the relative error the limits theorem asks of one ψ neuron,
1/(50 a² E f²) (PAPER §4.3, step 3), and which regimes reach it.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from rfjax import activations
from rfjax import distributions
from rfjax import experiments
from rfjax import features
from rfjax import gaussian
from rfjax import networks
from rfjax import psi
from rfjax import results
from rfjax import solvers
from rfjax import sweep
from rfjax import targets
from rfjax import training
from rfjax import validation
from rfjax import verdicts
from rfjax.experiments import neuron_gd
from rfjax.experiments import polynomial_sgd

NAME = "lazy_training"
F64 = jnp.float64
W_LR_SCALINGS = ("mean_field", "lazy")


def neuron_step_sizes(scaling: str, lr_times_r: float, r: int) -> dict[str, float]:
  """SGD step sizes {"lr_w": η_W, "lr_u": η_U} on (W, U) at width r (module docstring)."""
  if scaling == "mean_field":
    return dict(lr_w=lr_times_r * r, lr_u=lr_times_r / r)
  if scaling == "lazy":
    return dict(lr_w=lr_times_r / r, lr_u=lr_times_r / r)
  raise ValueError(f"unknown scaling {scaling!r}; known: {W_LR_SCALINGS}")


def _poly_sample(key, J_md, c_m, *, d, batch):
  x = distributions.ball(key, batch, d, dtype=F64)
  return x, jnp.sign(polynomial_sgd.polynomial(x, J_md, c_m))


def _lazy_seed(key: jax.Array, J_md: jax.Array, c_m: jax.Array, *, d: int, r: int,
               activation: str, lr: float, steps: int, n_test: int, n_probe: int):
  k_init, k_data, k_test = jax.random.split(key, 3)
  x_test = distributions.ball(k_test, n_test, d, dtype=F64)
  y_test = jnp.sign(polynomial_sgd.polynomial(x_test, J_md, c_m))
  x_probe = x_test[:n_probe]
  sample = functools.partial(_poly_sample, J_md=J_md, c_m=c_m, d=d, batch=1)
  net = networks.make(r, activation, dtype=F64)
  p0 = networks.init(net, k_init, d)
  out = {}
  finals = {}
  for regime in training.REGIMES:
    tr = training.make_trainer(net, regime, lr=lr, loss="hinge")
    state, logs = training.train(tr, p0, k_data, sample, steps=steps, log_every=steps,
                                 x_test=x_test, y_test=y_test, x_probe=x_probe)
    out[regime] = jax.tree.map(lambda a: a[-1], logs)
    finals[regime] = tr.predict(state.params, p0, x_probe)
    if regime == "full":
      out["w_move_abs"] = jnp.linalg.norm(state.params["params"]["w"] - p0["params"]["w"])
  gap = finals["full"] - finals["linearized"]
  out["out_gap"] = jnp.sqrt(jnp.mean(gap ** 2) / jnp.mean(finals["full"] ** 2))
  return out


def _neuron_sample(key, w_d, c, *, d, batch):
  x = distributions.gaussian(key, batch, d, dtype=F64)
  y = jax.nn.relu(jnp.matmul(x, w_d, precision=jax.lax.Precision.HIGHEST) - c) / \
      jnp.linalg.norm(w_d)
  return jnp.concatenate([x, jnp.ones((batch, 1), F64)], axis=1), y


def coupling_features(w0_rd: jax.Array, x_nd: jax.Array) -> jax.Array:
  """The linearised ReLU net's features 1{<w0_i, x̃> > 0}·x̃_j, x̃ = (x, 1): [n, r(d+1)].

  N_lin(W, U) = Σ_ij u_i w_ij 1{<w0_i, x̃> > 0} x̃_j is linear in these r(d+1) features
  (PAPER §2.1, §4.4: the coupling features), so their best least-squares fit bounds what
  the linearised twin can reach with any step sizes and any number of steps.
  """
  x_nd1 = jnp.concatenate([x_nd, jnp.ones((x_nd.shape[0], 1), x_nd.dtype)], axis=1)
  gate_nr = (networks.preactivation(w0_rd, x_nd1) > 0).astype(x_nd.dtype)
  return (gate_nr[:, :, None] * x_nd1[:, None, :]).reshape(x_nd.shape[0], -1)


def best_fit_errors(key: jax.Array, w0_rd: jax.Array, w_d: jax.Array, c: jax.Array, *,
                    lin_fit_n: int) -> dict[str, jax.Array]:
  """Relative errors of the best readouts of the lazy twins' fixed features (with an output
  bias, unbounded norm) for the neuron [<w*, x> − c]_+, x ~ N(0, I_d); w0_rd is [r, d+1].

  - "random_features": exact population least squares over ReLU(<w0_i, x̃>) (exact-mode
    Gaussian moments): no readout of the frozen features, however trained, does better.
  - "linearized" (when lin_fit_n > 0): in-sample least squares over the r(d+1) coupling
    features on lin_fit_n Gaussian inputs. The in-sample minimum lies below the population
    one on average, so this is a low (generous) estimate of the linearised twin's best.
  """
  d = w_d.shape[0]
  target = targets.relu_neuron(w_d, -c)
  form = features.RidgeForm(w_dr=w0_rd[:, :d].T, b_r=w0_rd[:, d], activation="relu")
  m = solvers.exact_moments(form, target)
  u, u0 = solvers.least_squares(m)
  out = {"random_features": solvers.error(m, u, u0) / m.yy}
  if lin_fit_n:
    m = solvers.sample_moments(coupling_features, w0_rd, target.fn, key, n=lin_fit_n,
                               chunk=min(lin_fit_n, 2048), d=d, dtype=w_d.dtype)
    u, u0 = solvers.least_squares(m)
    out["linearized"] = jnp.maximum(solvers.error(m, u, u0), 0.0) / m.yy
  return out


def paper_relative_threshold(d: int, c: float) -> float:
  """The relative error the limits theorem asks of one neuron of ψ (PAPER §4.3, step 3):
  absolute error ε = 1/(50 a²), a = 4m + 2 ReLUs in ψ, on [<w*, x> − c]_+ with ‖w*‖ = d,
  divided by its second moment (rescaling w* leaves the relative error unchanged)."""
  a = 4 * psi.psi_params(d).m + 2
  return 1.0 / (50.0 * a * a * float(gaussian.relu_gauss_second(float(d), -c)))


def _neuron_seed(key: jax.Array, c: jax.Array, *, d: int, r: int, lr: float,
                 lr_w: float | None, steps: int, log_every: int, batch: int, n_test: int,
                 lin_fit_n: int):
  k_star, k_init, k_data, k_test, k_fit = jax.random.split(key, 5)
  direction = jax.random.normal(k_star, (d,), F64)
  w_d = d * direction / jnp.linalg.norm(direction)           # ‖w*‖ = R = d
  sample = functools.partial(_neuron_sample, w_d=w_d, c=c, d=d, batch=batch)
  x_test, y_test = sample(k_test)                                # batch-sized; enlarge:
  x_test, y_test = jax.tree.map(
      lambda *a: jnp.concatenate(a), *[sample(jax.random.fold_in(k_test, i))
                                       for i in range(max(1, n_test // batch))])
  net = networks.make(r, "relu", dtype=F64)
  p0 = networks.init(net, k_init, d + 1)
  logs = {}
  for regime in training.REGIMES:
    tr = training.make_trainer(net, regime, lr=lr, lr_w=lr_w, loss="squared")
    _, logs[regime] = training.train(tr, p0, k_data, sample, steps=steps,
                                     log_every=log_every, x_test=x_test, y_test=y_test,
                                     x_probe=x_test[:256], loss="squared")
  best = best_fit_errors(k_fit, p0["params"]["w"], w_d, c, lin_fit_n=lin_fit_n)
  return logs, best


def validate(config: mlc.ConfigDict) -> None:
  validation.positive_ints("d", config.d)
  validation.positive_ints("degree", config.degree)
  validation.positive_ints("widths", config.widths)
  if len(set(config.widths)) < 2:
    raise validation.ConfigError("widths", "needs at least two widths to fit exponents")
  validation.positive_ints("num_seeds", config.num_seeds)
  validation.positive_ints("steps", config.steps)
  validation.positive_floats("lr_times_r", config.lr_times_r)
  validation.positive_ints("n_test", config.n_test)
  validation.positive_ints("n_probe", config.n_probe)
  if config.n_probe > config.n_test:
    raise validation.ConfigError("n_probe", "must be <= n_test")
  validation.one_of("activations", config.activations, activations.names())
  if "relu" not in config.activations:
    raise validation.ConfigError("activations", "must include 'relu' (sign flips)")
  validation.positive_ints("neuron_d", config.neuron_d, minimum=2)
  validation.positive_ints("neuron_widths", config.neuron_widths)
  validation.positive_ints("neuron_steps", config.neuron_steps)
  validation.positive_ints("neuron_log_every", config.neuron_log_every)
  if config.neuron_steps % config.neuron_log_every:
    raise validation.ConfigError("neuron_log_every", "must divide neuron_steps")
  validation.positive_ints("neuron_batch", config.neuron_batch)
  validation.positive_floats("neuron_lr_times_r", config.neuron_lr_times_r)
  validation.one_of("neuron_w_lr_scaling", config.neuron_w_lr_scaling, W_LR_SCALINGS)
  if not isinstance(config.neuron_w_lr_scaling, str):
    raise validation.ConfigError("neuron_w_lr_scaling", "must be one string")
  if not isinstance(config.neuron_kink, (int, float)) or abs(config.neuron_kink) > 2:
    raise validation.ConfigError("neuron_kink", "must be a number in [-2, 2]")
  validation.positive_floats("neuron_tolerance", config.neuron_tolerance)
  validation.positive_ints("neuron_lin_fit_samples_per_feature",
                           config.neuron_lin_fit_samples_per_feature, minimum=2)
  validation.positive_ints("neuron_lin_fit_max_features", config.neuron_lin_fit_max_features)
  for field in ("w_move_exponent_max", "sign_flips_exponent_max", "out_gap_exponent_max"):
    v = config[field]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -10 <= v <= 10:
      raise validation.ConfigError(field, f"must be a number in [-10, 10], got {v!r}")


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  lazy = [dict(part="lazy", activation=a, r=r) for a in config.activations
          for r in config.widths]
  return lazy + [dict(part="neuron", r=r) for r in config.neuron_widths]


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array) -> list[dict]:
  r = cell["r"]
  keys = sweep.seed_keys(key, config.num_seeds)
  rows = []
  if cell["part"] == "lazy":
    J, c = polynomial_sgd.random_polynomial(config.seed, config.d, config.degree)
    fn = functools.partial(_lazy_seed, d=config.d, r=r, activation=cell["activation"],
                           lr=config.lr_times_r / r, steps=config.steps,
                           n_test=config.n_test, n_probe=config.n_probe)
    out = sweep.over_seeds(fn, keys, jnp.asarray(J, F64), jnp.asarray(c, F64))
    for seed in range(config.num_seeds):
      for regime in training.REGIMES:
        m = out[regime]
        rows.append(dict(
            part="lazy", activation=cell["activation"], r=r, regime=regime, seed=seed,
            step=config.steps, test_hinge=float(m["test_loss"][seed]),
            test_error=float(m["test_error"][seed]), w_move=float(m["w_move"][seed]),
            sign_flips=float(m["sign_flips"][seed]),
            u_norm=float(m["u_norm"][seed]),
            **(dict(w_move_abs=float(out["w_move_abs"][seed]),
                    out_gap=float(out["out_gap"][seed])) if regime == "full" else {})))
    return rows
  d = config.neuron_d
  spec = neuron_gd.target_specs(d, (config.neuron_kink,), ("psi_neuron",))[0]
  lrs = neuron_step_sizes(config.neuron_w_lr_scaling, config.neuron_lr_times_r, r)
  fn = functools.partial(_neuron_seed, d=d, r=r, lr=lrs["lr_u"], lr_w=lrs["lr_w"],
                         steps=config.neuron_steps, log_every=config.neuron_log_every,
                         batch=config.neuron_batch, n_test=config.n_test,
                         lin_fit_n=lin_fit_samples(config, r))
  logs, best = sweep.over_seeds(fn, keys, jnp.asarray(spec["c"], F64))
  steps = np.arange(config.neuron_steps // config.neuron_log_every + 1) * \
      config.neuron_log_every
  for seed in range(config.num_seeds):
    for regime in training.REGIMES:
      for i, step in enumerate(steps):
        m = {k: float(v[seed, i]) for k, v in logs[regime].items()}
        rows.append(dict(part="neuron", r=r, regime=regime, seed=seed, step=int(step),
                         d=d, c=spec["c"], test_error=m["test_error"],
                         lr_w=0.0 if regime == "random_features" else lrs["lr_w"],
                         lr_u=lrs["lr_u"],
                         train_loss=m["train_loss"], w_move=m["w_move"],
                         sign_flips=m["sign_flips"],
                         **({"best_fit_error": float(best[regime][seed])}
                            if regime in best else {})))
  return rows


def lin_fit_samples(config: mlc.ConfigDict, r: int) -> int:
  """Inputs for the linearised twin's best fit at width r; 0 (skipped) above the cap."""
  p = r * (config.neuron_d + 1)
  if p > config.neuron_lin_fit_max_features:
    return 0
  return config.neuron_lin_fit_samples_per_feature * p


def _slope(x: list[float], y: list[float]) -> float:
  x, y = np.asarray(x, float), np.asarray(y, float)
  ok = y > 0
  if ok.sum() < 2:
    return float("nan")
  return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def _mean(rows: list[dict], key: str) -> float:
  return float(np.mean([results.to_float(r[key]) for r in rows]))


def _fmt(v: float | None) -> str:
  return "not computed" if v is None else f"{v:.3g}"


def _best(sel: list[dict], regime: str) -> float | None:
  """Mean best-fit relative error of a twin's features over seeds; None if not computed."""
  vals = [x["best_fit_error"] for x in sel if x["regime"] == regime and "best_fit_error" in x]
  return float(np.mean([results.to_float(v) for v in vals])) if vals else None


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """Exponents of movement, flips and full-vs-linearised gap in r; the neuron contrast."""
  lazy = {}
  for act in config.activations:
    per_r = []
    for r in config.widths:
      sel = [x for x in rows if x["part"] == "lazy" and x["activation"] == act
             and x["r"] == r]
      full = [x for x in sel if x["regime"] == "full"]
      per_r.append(dict(r=r, w_move=_mean(full, "w_move"),
                        w_move_abs=_mean(full, "w_move_abs"),
                        sign_flips=_mean(full, "sign_flips"), out_gap=_mean(full, "out_gap"),
                        **{f"{g}_test_error": _mean([x for x in sel if x["regime"] == g],
                                                    "test_error")
                           for g in training.REGIMES}))
    rs = [p["r"] for p in per_r]
    lazy[act] = dict(
        cells=per_r,
        w_move_exponent=_slope(rs, [p["w_move"] for p in per_r]),
        w_move_abs_exponent=_slope(rs, [p["w_move_abs"] for p in per_r]),
        sign_flips_exponent=_slope(rs, [p["sign_flips"] for p in per_r]),
        out_gap_exponent=_slope(rs, [p["out_gap"] for p in per_r]))
  neuron = []
  final = config.neuron_steps
  for r in config.neuron_widths:
    sel = [x for x in rows if x["part"] == "neuron" and x["r"] == r and x["step"] == final]
    lrs = neuron_step_sizes(config.neuron_w_lr_scaling, config.neuron_lr_times_r, r)
    neuron.append(dict(r=r, **{f"{g}_relative_error": _mean(
        [x for x in sel if x["regime"] == g], "test_error") for g in training.REGIMES},
        full_w_move=_mean([x for x in sel if x["regime"] == "full"], "w_move"),
        linearized_w_move=_mean([x for x in sel if x["regime"] == "linearized"], "w_move"),
        full_sign_flips=_mean([x for x in sel if x["regime"] == "full"], "sign_flips"),
        **{f"{g}_best_fit_error": _best(sel, g) for g in ("random_features", "linearized")},
        step_sizes={g: dict(lr_w=None if g == "random_features" else lrs["lr_w"],
                            lr_u=lrs["lr_u"]) for g in training.REGIMES}))
  tol = config.neuron_tolerance
  reasons = []
  # Lazy part: each exponent below its maximum; a rate needs three widths and positive values.
  checks = [(a, "w_move", config.w_move_exponent_max) for a in lazy]
  checks += [(a, "out_gap", config.out_gap_exponent_max) for a in lazy]
  checks += [("relu", "sign_flips", config.sign_flips_exponent_max)]
  lazy_parts = []
  for act, key, top in checks:
    values = [p[key] for p in lazy[act]["cells"]]
    exponent = lazy[act][f"{key}_exponent"]
    points = sum(1 for v in values if v > 0)
    if points < 3 or not np.isfinite(exponent):
      lazy_parts.append("inconclusive")
      reasons.append(f"{act}: {key} exponent from {points} width(s) with {key} > 0; a rate "
                     "needs three")
    elif exponent < top:
      lazy_parts.append("holds")
    else:
      lazy_parts.append("fails")
      reasons.append(f"{act}: {key} ∝ r^{exponent:.2f}, not below r^{top:g}")
  lazy_ok = all(v == "holds" for v in lazy_parts)
  contrast = [n["full_relative_error"] <= tol < min(n["random_features_relative_error"],
                                                     n["linearized_relative_error"])
              for n in neuron]
  # Stronger: SGD on the full net beats the best readout of either twin's fixed features.
  beats_best = [all(n["full_relative_error"] < n[f"{g}_best_fit_error"]
                    for g in ("random_features", "linearized")
                    if n[f"{g}_best_fit_error"] is not None) for n in neuron]
  # Neuron part, per width: a lazy twin that learns (trained to ≤ tol, or its best readout
  # at or below the full net's error ≤ tol) contradicts the claim; a full net that has not
  # reached tol in neuron_steps steps (nothing reached) cannot tell.
  neuron_parts = []
  for n, c_ok, b_ok in zip(neuron, contrast, beats_best):
    full = n["full_relative_error"]
    twins = {g: n[f"{g}_relative_error"] for g in ("random_features", "linearized")}
    if c_ok and b_ok:
      neuron_parts.append("holds")
    elif min(twins.values()) <= tol:
      neuron_parts.append("fails")
      reasons.append(f"neuron r={n['r']}: a lazy twin learned it (relative error " + ", ".join(
          f"{g} {v:.3g}" for g, v in twins.items()) + f" ≤ {tol:g} for one)")
    elif full <= tol:
      neuron_parts.append("fails")
      reasons.append(f"neuron r={n['r']}: the full net's {full:.3g} is not below the best "
                     "readout of a twin's fixed features (" + ", ".join(
                         f"{g} {_fmt(n[f'{g}_best_fit_error'])}"
                         for g in ("random_features", "linearized")) + ")")
    else:
      neuron_parts.append("inconclusive")
      reasons.append(f"neuron r={n['r']}: the full net did not reach {tol:g} in "
                     f"{config.neuron_steps} steps (relative error {full:.3g})")
  verdict = verdicts.combine(lazy_parts + neuron_parts)
  unfit = [n["r"] for n in neuron if n["linearized_best_fit_error"] is None]
  spec = neuron_gd.target_specs(config.neuron_d, (config.neuron_kink,), ("psi_neuron",))[0]
  paper_tol = paper_relative_threshold(config.neuron_d, spec["c"])
  scaling = config.neuron_w_lr_scaling
  c_lr = config.neuron_lr_times_r
  steps_text = (f"η_W = {c_lr:g}·r, η_U = {c_lr:g}/r (mean-field)" if scaling == "mean_field"
                else f"η_W = η_U = {c_lr:g}/r (lazy)")
  return dict(
      claim=("Section 2: with η ∝ 1/r and fixed steps, W moves less and fewer ReLU signs "
             "flip as r grows, so the full net tracks its linearisation (lazy training); "
             "yet on the hard neuron the full net — its first layer trained with "
             f"{scaling} step sizes — learns where the lazy twins (random features, "
             "linearised net, same step sizes) do not."),
      prediction=("w_move ∝ r^a with a ≈ −2 (‖W_t−W_0‖_F ∝ r^{−3/2}, PAPER §6; ‖W_0‖_F ∝ "
                  f"√r) — checked as a < {config.w_move_exponent_max:g}; ReLU sign-flip "
                  f"exponent < {config.sign_flips_exponent_max:g}; full-vs-linearised gap "
                  f"exponent < {config.out_gap_exponent_max:g}; "
                  f"neuron: full relative error ≤ {tol} < random_features, linearized at "
                  "every neuron width, and below the best readout of either twin's fixed "
                  "features (exact for random features, in-sample for the linearised net, "
                  "where computed)"),
      measured=("; ".join(
          f"{a}: w_move ∝ r^{v['w_move_exponent']:.2f} (abs r^{v['w_move_abs_exponent']:.2f}), "
          f"flips ∝ r^{v['sign_flips_exponent']:.2f}, gap ∝ r^{v['out_gap_exponent']:.2f}"
          for a, v in lazy.items()) + f"; neuron, {steps_text} for all regimes "
          "(full/RF/lin rel. error): " + ", ".join(
          f"r={n['r']}: {n['full_relative_error']:.3g}/"
          f"{n['random_features_relative_error']:.3g}/{n['linearized_relative_error']:.3g}"
          + f" (best fits RF {_fmt(n['random_features_best_fit_error'])}, lin "
          f"{_fmt(n['linearized_best_fit_error'])})" for n in neuron)
          + f"; the limits theorem's per-neuron threshold {paper_tol:.2g} (relative)"),
      **verdicts.fields(
          verdict, reasons=reasons,
          would_fail_if=(
              "with three or more widths, for some activation the fitted exponent in r of "
              f"‖W_T−W_0‖_F/‖W_0‖_F not below {config.w_move_exponent_max:g} or that of the "
              f"full-vs-linearised gap not below {config.out_gap_exponent_max:g}, or that of "
              f"the ReLU sign-flip fraction not below {config.sign_flips_exponent_max:g}; or "
              "on the hard neuron at some width, a lazy twin (random features or the "
              f"linearised net) trained to relative error ≤ {tol:g}, or a full net at ≤ "
              f"{tol:g} that is not below the best readout of either twin's fixed features"),
          departures=(
              f"fixed T = {config.steps} steps and η = {config.lr_times_r:g}/r on the "
              "polynomial task, not the theorem's η = ε/(9rL²), T = ⌈9L²(C+1)²/ε²⌉ "
              "(PAPER §3.2); exponents from the seed mean at widths "
              f"{list(config.widths)} ({config.num_seeds} seeds), the predicted r^−2 of "
              "w_move checked only as an exponent below the maximum; training in float64; "
              "the hard-neuron contrast is an empirical one at a single "
              f"d = {config.neuron_d} (the limits theorem is asymptotic in d), with "
              f"{config.neuron_steps} steps, batch {config.neuron_batch}, {steps_text} and "
              f"the run's tolerance {tol:g} (the theorem's per-neuron threshold is "
              f"{paper_tol:.2g}, reported, not judged); a ReLU with a bias through a "
              "constant input; the linearised twin's best readout is an in-sample "
              "least-squares fit, computed only while r(d+1) ≤ "
              f"{config.neuron_lin_fit_max_features}"
              + (f" (not at r = {unfit})" if unfit else ""))),
      lazy_holds=bool(lazy_ok), neuron_contrast_holds=[bool(c) for c in contrast],
      neuron_full_beats_best_fits=[bool(b) for b in beats_best],
      paper_relative_threshold=paper_tol,
      paper_threshold_reached={g: [bool(n[f"{g}_relative_error"] <= paper_tol)
                                   for n in neuron] for g in training.REGIMES},
      lr_times_r=config.lr_times_r, steps=config.steps,
      neuron_setup=dict(d=config.neuron_d, kink=config.neuron_kink,
                        inputs="x ~ N(0, I_d), x̃ = (x, 1)", target="[<w*,x> − c]_+ / ‖w*‖, "
                        f"‖w*‖ = d, c = {spec['c']:g} (ψ offset nearest kink·d)",
                        loss="squared",
                        lr_times_r=config.neuron_lr_times_r, steps=config.neuron_steps,
                        batch=config.neuron_batch, w_lr_scaling=scaling,
                        step_sizes=steps_text + "; random_features: W frozen, same η_U",
                        tolerance=tol),
      neuron_contrast_random_features=[bool(
          n["full_relative_error"] <= tol < n["random_features_relative_error"])
          for n in neuron],
      neuron_contrast_linearized=[bool(
          n["full_relative_error"] <= tol < n["linearized_relative_error"]) for n in neuron],
      lazy=lazy, neuron=neuron,
  )


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    claim="lazy training (Section 2)"))
