"""Thms 3.1/3.2: online SGD on the two-layer net learns sign(P(x)) for a low-degree P.

Data: x uniform in the unit ball of R^d, y = sign(P(x)) with P a random degree-k
polynomial (coefficients U[−1, 1], so |P| ≤ 1; constant term set so that E P = 0 on the
ball, for balanced labels). Network N(W, U) = Σ u_i σ(<w_i, x>) with analytic σ, Xavier
cube W_0, U_0 = 0; hinge loss, batch 1, a fresh sample each step (PAPER §3.0). The three
regimes of `rfjax.training` run from the same W_0 on the same sample stream. Beside them,
L_D(W_0, U*): the best readout with ‖U*‖ ≤ C/√r on the frozen features σ(W_0 x)
(`solvers.hinge_ball_fit` on a fit sample, its hinge measured on the held-out test set).

Step size and steps: the theory's η = ε/(9 r L²), T = ⌈9 L²(C+1)²/ε²⌉ (PAPER §3.2,
RECONSTRUCTED) are recorded in the summary; we keep the theory's scaling η ∝ 1/r
(η·r = `lr_times_r` fixed) and a fixed laptop-scale T = `steps`.
"""
from __future__ import annotations

import functools
import itertools
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
from absl import logging

from rfjax import activations
from rfjax import distributions
from rfjax import experiments
from rfjax import linalg
from rfjax import networks
from rfjax import results
from rfjax import solvers
from rfjax import sweep
from rfjax import training
from rfjax import validation
from rfjax import verdicts

NAME = "polynomial_sgd"
_HI = jax.lax.Precision.HIGHEST
METRICS = ("train_loss", "test_loss", "test_error", "w_move", "u_norm", "sign_flips")


def monomials(d: int, degree: int) -> np.ndarray:
  """All multi-indices J with |J| ≤ degree, [m, d] (the constant first)."""
  out = [np.zeros(d, int)]
  for k in range(1, degree + 1):
    for combo in itertools.combinations_with_replacement(range(d), k):
      out.append(np.bincount(np.array(combo), minlength=d))
  return np.array(out)


def random_polynomial(seed: int, d: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
  """(J_md, c_m): c_J ~ U[−1, 1] for |J| ≥ 1, c_0 = −Σ_{|J|≥1} c_J E_ball[x^J] (E P = 0)."""
  J = monomials(d, degree)
  rng = np.random.default_rng(seed)
  c = rng.uniform(-1.0, 1.0, len(J))
  x = np.asarray(distributions.ball(jax.random.key(seed), 200_000, d, dtype=jnp.float64))
  mean = np.prod(x[:, None, :] ** J[None], axis=-1).mean(0)
  c[0] = -np.dot(c[1:], mean[1:])
  return J, c


def polynomial(x_nd: jax.Array, J_md: jax.Array, c_m: jax.Array) -> jax.Array:
  """P(x) = Σ_J c_J x^J, [n]."""
  return jnp.prod(x_nd[:, None, :] ** J_md[None], axis=-1) @ c_m


def _sample(key, J_md, c_m, *, d, batch):
  x = distributions.ball(key, batch, d)
  return x, jnp.sign(polynomial(x, J_md, c_m))


def _data(key: jax.Array, J_md: jax.Array, c_m: jax.Array, *, d: int, batch: int,
          n_test: int):
  """Per-seed keys and data: (k_init, k_data, k_fit, sample, x_test, y_test)."""
  k_init, k_data, k_test, k_fit = jax.random.split(key, 4)
  x_test = distributions.ball(k_test, n_test, d)
  y_test = jnp.sign(polynomial(x_test, J_md, c_m))
  sample = functools.partial(_sample, J_md=J_md, c_m=c_m, d=d, batch=batch)
  return k_init, k_data, k_fit, sample, x_test, y_test


def _best_readout(k_fit: jax.Array, p0, J_md: jax.Array, c_m: jax.Array,
                  radii_B: jax.Array, x_test: jax.Array, y_test: jax.Array, *, d: int,
                  r: int, activation: str, n_fit: int, fit_iters: int, mu: float):
  """Fit and test hinge of the best readout U* on W_0's features, per radius [B] each."""
  # L_D(W_0, U*): best hinge readout in the ball ‖U‖ ≤ C/√r on the frozen features, in
  # float64 and in the n-dim row space of Φ (Φ = A S Bᵀ, u = B v, ‖u‖ = ‖v‖; the part of u
  # orthogonal to the rows only adds norm), so each iteration costs n², not n·r.
  w0 = p0["params"]["w"].astype(jnp.float64)
  x_fit = distributions.ball(k_fit, n_fit, d, dtype=jnp.float64)
  y_fit = jnp.sign(polynomial(x_fit, J_md.astype(jnp.float64), c_m.astype(jnp.float64)))
  phi_fit = networks.hidden(w0, x_fit, activation)
  evals, a_nn = linalg.eigh(jnp.matmul(phi_fit, phi_fit.T, precision=_HI))
  s_n = jnp.sqrt(jnp.maximum(evals, 0.0))
  keep = s_n > 1e-7 * jnp.max(s_n)
  fit = solvers.hinge_ball_fit(a_nn * jnp.where(keep, s_n, 0.0)[None, :], y_fit,
                               radii_B.astype(jnp.float64) / math.sqrt(r), mu=mu,
                               num_iters=fit_iters)
  coef_Bn = jnp.matmul(fit.u_Br * jnp.where(keep, 1 / jnp.where(keep, s_n, 1.0), 0.0)[None, :],
                       a_nn.T, precision=_HI)
  kx_tn = jnp.matmul(networks.hidden(w0, x_test.astype(jnp.float64), activation), phi_fit.T,
                      precision=_HI)
  out_test = jnp.matmul(kx_tn, coef_Bn.T, precision=_HI)             # [n_test, B]
  test_hinge_B = jnp.mean(training.hinge(y_test[:, None].astype(jnp.float64), out_test), 0)
  return dict(fit_hinge=fit.hinge_B, test_hinge=test_hinge_B)


# ---------------------------------------------------------------------------------------
# Training runs in segments of `checkpoint_every` steps (one segment of all steps when it is
# 0); train_segment continues the very same sample stream, so the segments take exactly the
# steps of one uninterrupted run. Between segments orbax saves the state of all seeds.


def _trainers(r: int, activation: str, lr: float) -> tuple[networks.TwoLayer, dict]:
  net = networks.make(r, activation)
  return net, {g: training.make_trainer(net, g, lr=lr, loss="hinge") for g in training.REGIMES}


def _start_seed(key: jax.Array, J_md: jax.Array, c_m: jax.Array, *, d: int, r: int,
                activation: str, lr: float, batch: int, n_test: int, n_probe: int):
  """({regime: TrainState at step 0}, {regime: metrics at step 0}) of one seed."""
  k_init, _, _, _, x_test, y_test = _data(key, J_md, c_m, d=d, batch=batch, n_test=n_test)
  net, trainers = _trainers(r, activation, lr)
  p0 = networks.init(net, k_init, d)
  states = {g: tr.init(p0) for g, tr in trainers.items()}
  first = {g: training.metrics(tr, states[g], x_test, y_test, x_test[:n_probe], "hinge")
           for g, tr in trainers.items()}
  return states, first


def _segment_seed(key: jax.Array, states: dict, J_md: jax.Array, c_m: jax.Array,
                  start_log: jax.Array, *, d: int, r: int, activation: str, lr: float,
                  batch: int, n_test: int, n_probe: int, num_logs: int, log_every: int):
  """Every regime num_logs·log_every steps further: (states, {regime: logs [num_logs]})."""
  _, k_data, _, sample, x_test, y_test = _data(key, J_md, c_m, d=d, batch=batch,
                                               n_test=n_test)
  _, trainers = _trainers(r, activation, lr)
  out_states, logs = {}, {}
  for g, tr in trainers.items():
    out_states[g], logs[g] = training.train_segment(
        tr, states[g], k_data, sample, start_log=start_log, num_logs=num_logs,
        log_every=log_every, x_test=x_test, y_test=y_test, x_probe=x_test[:n_probe])
  return out_states, logs


def _fit_seed(key: jax.Array, J_md: jax.Array, c_m: jax.Array, radii_B: jax.Array, *,
              d: int, r: int, activation: str, batch: int, n_test: int, n_fit: int,
              fit_iters: int, mu: float):
  k_init, _, k_fit, _, x_test, y_test = _data(key, J_md, c_m, d=d, batch=batch, n_test=n_test)
  p0 = networks.init(networks.make(r, activation), k_init, d)
  return _best_readout(k_fit, p0, J_md, c_m, radii_B, x_test, y_test, d=d, r=r,
                       activation=activation, n_fit=n_fit, fit_iters=fit_iters, mu=mu)


def _checkpoint_manager(directory: str):
  import orbax.checkpoint as ocp        # only runs that checkpoint pay for the import
  options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False,
                                         cleanup_tmp_directories=True)
  return ocp, ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _train(config: mlc.ConfigDict, r: int, keys: jax.Array, J_md: jax.Array,
           c_m: jax.Array, checkpoint_dir: str | None) -> dict:
  """The three regimes' logs {regime: {metric: [s, steps // log_every + 1]}}, trained in
  segments of checkpoint_every steps (or one of all steps); with checkpoint_dir and
  checkpoint_every > 0, the states and logs so far are saved after every segment but the
  last, and a run continues from the latest save."""
  common = dict(d=config.d, r=r, activation=config.activation, lr=config.lr_times_r / r,
                batch=config.batch, n_test=config.n_test, n_probe=config.n_probe)
  states, first = sweep.over_seeds(functools.partial(_start_seed, **common), keys, J_md, c_m)
  total = config.steps // config.log_every
  per = (config.checkpoint_every or config.steps) // config.log_every
  logs = {g: {k: np.zeros((keys.shape[0], total + 1), v.dtype) for k, v in m.items()}
          for g, m in first.items()}
  for g, m in first.items():
    for k, v in m.items():
      logs[g][k][:, 0] = v
  leaves, treedef = jax.tree.flatten(states)
  done, manager = 0, None
  if checkpoint_dir and config.checkpoint_every:
    ocp, manager = _checkpoint_manager(checkpoint_dir)
    step = manager.latest_step()
    if step is not None:
      saved = manager.restore(step, args=ocp.args.StandardRestore(dict(leaves=leaves, logs=logs)))
      states = jax.tree.unflatten(treedef, [np.asarray(a) for a in saved["leaves"]])
      logs = jax.tree.map(np.array, saved["logs"])
      done = step // config.log_every
      logging.info("%s r=%d: resuming at step %d from %s", NAME, r, step, checkpoint_dir)
  segment = functools.partial(_segment_seed, num_logs=per, log_every=config.log_every,
                              **common)
  while done < total:
    states, seg = sweep.over_seeds(segment, keys, J_md, c_m, jnp.int32(done),
                                   per_seed=(states,))
    for g, m in seg.items():
      for k, v in m.items():
        logs[g][k][:, done + 1:done + 1 + per] = v
    done += per
    if manager is not None and done < total:
      manager.save(done * config.log_every, args=ocp.args.StandardSave(
          dict(leaves=jax.tree.leaves(states), logs=logs)))
      manager.wait_until_finished()
  if manager is not None:
    manager.close()
  return logs


def validate(config: mlc.ConfigDict) -> None:
  validation.positive_ints("d", config.d)
  validation.positive_ints("degree", config.degree)
  validation.positive_ints("widths", config.widths)
  validation.positive_ints("num_seeds", config.num_seeds)
  validation.positive_ints("steps", config.steps)
  validation.positive_ints("log_every", config.log_every)
  if config.steps % config.log_every:
    raise validation.ConfigError("log_every", f"must divide steps={config.steps}")
  validation.positive_ints("checkpoint_every", config.checkpoint_every, minimum=0)
  if config.checkpoint_every and (config.checkpoint_every % config.log_every
                                  or config.steps % config.checkpoint_every):
    raise validation.ConfigError(
        "checkpoint_every", f"must be 0 (off) or a multiple of log_every={config.log_every} "
        f"that divides steps={config.steps}, got {config.checkpoint_every}")
  validation.positive_ints("batch", config.batch)
  validation.positive_floats("lr_times_r", config.lr_times_r)
  validation.positive_ints("n_test", config.n_test)
  validation.positive_ints("n_probe", config.n_probe)
  if config.n_probe > config.n_test:
    raise validation.ConfigError("n_probe", "must be <= n_test (the probe is a test prefix)")
  validation.positive_ints("n_fit", config.n_fit)
  validation.positive_ints("fit_iters", config.fit_iters)
  validation.positive_floats("fit_mu", config.fit_mu)
  validation.positive_floats("C", config.C)
  validation.positive_floats("C_grid", config.C_grid)
  validation.positive_floats("epsilon", config.epsilon)
  validation.positive_floats("rf_tolerance", config.rf_tolerance, allow_zero=True)
  try:
    activations.require_analytic(config.activation, field="activation")
  except KeyError as e:
    raise validation.ConfigError("activation", str(e)) from None


def cells(config: mlc.ConfigDict) -> list[dict[str, Any]]:
  return [dict(r=r) for r in config.widths]


def _radii(config: mlc.ConfigDict) -> np.ndarray:
  return np.array(sorted(set(config.C_grid) | {config.C}), np.float32)


def run_cell(config: mlc.ConfigDict, cell: dict[str, Any], key: jax.Array,
             checkpoint_dir: str | None = None) -> list[dict]:
  """Rows of one width. With config.checkpoint_every > 0 the training runs in segments of
  that many steps (the same steps as one run), saved under checkpoint_dir (if given) and
  resumed from there."""
  r = cell["r"]
  J, c = random_polynomial(config.seed, config.d, config.degree)
  J, c = jnp.asarray(J, jnp.float32), jnp.asarray(c, jnp.float32)
  radii = jnp.asarray(_radii(config))
  keys = sweep.seed_keys(key, config.num_seeds)
  logs = _train(config, r, keys, J, c, checkpoint_dir)
  fit = sweep.over_seeds(functools.partial(
      _fit_seed, d=config.d, r=r, activation=config.activation, batch=config.batch,
      n_test=config.n_test, n_fit=config.n_fit, fit_iters=config.fit_iters,
      mu=config.fit_mu), keys, J, c, radii)
  rows = []
  steps = np.arange(config.steps // config.log_every + 1) * config.log_every
  for seed in range(config.num_seeds):
    for regime in training.REGIMES:
      for i, step in enumerate(steps):
        m = {k: float(logs[regime][k][seed, i]) for k in METRICS}
        rows.append(dict(r=r, regime=regime, seed=seed, step=int(step),
                         train_hinge=m["train_loss"], test_hinge=m["test_loss"],
                         test_error=m["test_error"], w_move=m["w_move"],
                         u_norm=m["u_norm"], sign_flips=m["sign_flips"]))
    for b, C in enumerate(radii):
      rows.append(dict(r=r, regime="best_readout", seed=seed, C=float(C),
                       fit_hinge=float(fit["fit_hinge"][seed, b]),
                       test_hinge=float(fit["test_hinge"][seed, b])))
  return rows


def _mean(rows: list[dict], key: str) -> float:
  return float(np.mean([results.to_float(r[key]) for r in rows]))


def summarize(config: mlc.ConfigDict, rows: list[dict]) -> dict[str, Any]:
  """Full net within ε of L_D(W_0, U*) (best logged t, seed mean) and ≤ RF at every width."""
  act = activations.get(config.activation)
  L, eps, C = act.lipschitz, config.epsilon, config.C
  final = config.steps
  table = []
  for r in config.widths:
    cell = [x for x in rows if x["r"] == r]
    per = {}
    for regime in training.REGIMES:
      reg = [x for x in cell if x["regime"] == regime]
      curve = [_mean([x for x in reg if x["step"] == s], "test_hinge")
               for s in sorted({x["step"] for x in reg})]
      fin = [x for x in reg if x["step"] == final]
      per[regime] = dict(final_test_hinge=_mean(fin, "test_hinge"),
                         best_t_test_hinge=float(min(curve)),
                         final_test_error=_mean(fin, "test_error"),
                         final_train_hinge=_mean(fin, "train_hinge"),
                         w_move=_mean(fin, "w_move"), sign_flips=_mean(fin, "sign_flips"),
                         sqrt_r_u_norm=math.sqrt(r) * _mean(fin, "u_norm"))
    star = {float(Cv): _mean([x for x in cell if x["regime"] == "best_readout"
                              and abs(x["C"] - Cv) < 1e-6], "test_hinge")
            for Cv in _radii(config)}
    star_fit = _mean([x for x in cell if x["regime"] == "best_readout"
                      and abs(x["C"] - C) < 1e-6], "fit_hinge")
    L_star = star[float(np.float32(C))]
    table.append(dict(
        r=r, L_star=L_star, L_star_fit_sample=star_fit,
        L_star_by_C={f"{k:g}": v for k, v in star.items()},
        eta=config.lr_times_r / r, eta_theory=eps / (9 * r * L * L), **{
            f"{reg}_{k}": v for reg, d in per.items() for k, v in d.items()},
        full_within_eps=per["full"]["best_t_test_hinge"] <= L_star + eps,
        # Thm 3.2 speaks of the best iterate ("some t ∈ [T]"); the last-step gap is reported too.
        full_beats_rf=per["full"]["best_t_test_hinge"]
        <= per["random_features"]["best_t_test_hinge"] + config.rf_tolerance))
  within = all(t["full_within_eps"] for t in table)
  beats = all(t["full_beats_rf"] for t in table)
  T_theory = math.ceil(9 * L * L * (C + 1) ** 2 / eps ** 2)
  worst = max(t["full_best_t_test_hinge"] - t["L_star"] for t in table)
  # (A width whose cell failed has no rows: the runner makes such a run inconclusive.)
  reasons = [f"r={t['r']}: full best-t test hinge {t['full_best_t_test_hinge']:.4f} > "
             f"L_D(W_0,U*) + ε = {t['L_star'] + eps:.4f}" for t in table
             if not t["full_within_eps"]]
  reasons += [f"r={t['r']}: full best-t test hinge {t['full_best_t_test_hinge']:.4f} > "
              f"random features' {t['random_features_best_t_test_hinge']:.4f} + "
              f"{config.rf_tolerance}" for t in table if not t["full_beats_rf"]]
  verdict = verdicts.judge(bool(within and beats))
  eta_ratio = config.lr_times_r / (eps / (9 * L * L))
  return dict(
      claim=("Thms 3.1/3.2: SGD on the full two-layer net (hinge loss, Xavier W_0, U_0 = 0) "
             "competes with the best readout U* (‖U*‖ ≤ C/√r) on its frozen initial "
             "features, and does at least as well as training the readout alone."),
      prediction=(f"at every width, min_t L(W_t, U_t) ≤ L_D(W_0, U*) + {eps} (C = {C:g}) and "
                  f"full ≤ random_features + {config.rf_tolerance} (best logged t, seed mean)"),
      measured=(f"max over widths of [full best-t test hinge − L_D(W_0,U*)] = {worst:+.3f}; "
                "full − RF test hinge per width (best t / last step): " + ", ".join(
                    f"r={t['r']}: {t['full_best_t_test_hinge'] - t['random_features_best_t_test_hinge']:+.3f}"
                    f"/{t['full_final_test_hinge'] - t['random_features_final_test_hinge']:+.3f}"
                    for t in table)),
      **verdicts.fields(
          verdict, reasons=reasons,
          would_fail_if=(
              "at some width, the full net's seed-mean test hinge at its best logged step "
              f"above L_D(W_0, U*) + ε = L_D + {eps} (C = {C:g}), or above the random-features "
              f"regime's best logged test hinge + {config.rf_tolerance}"),
          departures=(
              f"T = {config.steps} steps and η = {config.lr_times_r:g}/r, far from Theorem "
              f"3.1/3.2's T = ⌈9L²(C+1)²/ε²⌉ = {T_theory} and η = ε/(9rL²) (the run's η is "
              f"{eta_ratio:.0f}× the theorem's; RECONSTRUCTED constants, PAPER §3.2); the "
              "widths are not checked against the theorem's width condition r ≥ r_0; the claim "
              "is judged on the BEST of the logged steps (every "
              f"{config.log_every} steps), chosen on the same {config.n_test}-point test set "
              "that measures it, a selection on the test set that favours 'holds' (the "
              "theorem's 'some t ∈ [T]' is over E L_D, not a test sample); the expectation "
              f"over SGD samples is a mean over {config.num_seeds} seeds; L_D(W_0, U*) is the "
              f"test hinge of a smoothed-hinge fit (μ = {config.fit_mu}, {config.fit_iters} "
              f"iterations, no convergence certificate) on {config.n_fit} fresh samples, an "
              "upper estimate of the constrained minimum; one random P (seed "
              f"{config.seed}, degree {config.degree}, d = {config.d}) and the comparison is "
              "with the best readout, not with L_D(P)")),
      C=C, epsilon=eps, L=L, sigma=config.activation, steps_used=config.steps,
      lr_times_r_used=config.lr_times_r,
      T_theory=T_theory, eta_times_r_theory=eps / (9 * L * L),
      step_size_note=("the theory's η = ε/(9rL²) and T = ⌈9L²(C+1)²/ε²⌉ (PAPER §3.2, "
                      "RECONSTRUCTED) are recorded as eta_theory / T_theory; the run keeps "
                      "η ∝ 1/r with η·r = lr_times_r_used and a fixed T = steps_used"),
      L_star_note=(f"L_D(W_0, U*) = test-set hinge of solvers.hinge_ball_fit on {config.n_fit} "
                   f"fresh samples (smoothing μ = {config.fit_mu}, {config.fit_iters} "
                   "iterations): an upper estimate of the constrained minimum; "
                   "L_star_fit_sample is the same readout's hinge on its fit sample"),
      polynomial=dict(d=config.d, degree=config.degree, seed=config.seed),
      cells=table,
  )


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=validate, cells=cells, run_cell=run_cell, summarize=summarize,
    claim="SGD learns low-degree polynomials (Thms 3.1, 3.2)", checkpoints=True))
