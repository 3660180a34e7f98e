"""Online SGD on N(W, U) in three regimes that share one pure step.

The setting is docs/theory.md, "SGD on the two-layer net".

- `full`: W and U trained (the network itself).
- `random_features`: U only; W stays bit-identical to W_0 (optax.set_to_zero on W).
- `linearized`: the model N_lin(W, U)(x) = Σ u_i [σ(<w0_i,x>) + σ'(<w0_i,x>)<w_i − w0_i, x>]
  (`networks.linearized_apply`): first order in W around W_0, U trained exactly. The joint
  first-order model around (W_0, U_0 = 0) is degenerate (∂N/∂W = 0 at U = 0, so it is
  random features); linearising in W only keeps the lazy-training twin of `full`: at
  W = W_0 both models and their gradients agree, and they differ by O(‖W − W_0‖²).

A step is `step(state, (x_bd, y_b)) -> state`: the loss (hinge max(0, 1 − yN) with the
subgradient 1{yN < 1}, or squared ½(N − y)²), averaged over the batch,
differentiated by jax.grad and applied by optax.sgd. `train` runs it under lax.scan on
fresh samples (a new (x_t, y_t) at every step) and logs metrics.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rfjax import networks

REGIMES = ("full", "random_features", "linearized")
LOSSES = ("hinge", "squared")
Params = networks.Params
Batch = tuple[jax.Array, jax.Array]          # (x_bd, y_b)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
  params: Params              # current (W_t, U_t)
  params0: Params             # (W_0, U_0), the linearisation point and the movement origin
  opt_state: Any
  loss_sum: jax.Array         # Σ of the online batch losses since the last log (scalar)
  count: jax.Array            # number of steps in loss_sum


class Trainer(NamedTuple):
  """Pure functions of one regime: init(params0) -> state, step(state, batch) -> state."""
  init: Callable[[Params], TrainState]
  step: Callable[[TrainState, Batch], TrainState]
  predict: Callable[[Params, Params, jax.Array], jax.Array]   # (params, params0, x_nd) -> [n]


def hinge(y: jax.Array, out: jax.Array) -> jax.Array:
  """max(0, 1 − y·out) with (sub)gradient −y·1{y·out < 1}, elementwise."""
  m = y * out
  return jnp.where(m < 1, 1 - m, jnp.zeros_like(m))


def squared(y: jax.Array, out: jax.Array) -> jax.Array:
  """½ (out − y)², elementwise."""
  return 0.5 * (out - y) ** 2


LOSS_FNS = dict(hinge=hinge, squared=squared)


def make_trainer(net: networks.TwoLayer, regime: str, lr: float,
                 loss: str = "hinge", lr_w: float | None = None) -> Trainer:
  """SGD with step size lr on `loss` in `regime` (see module docstring).

  lr_w, if given, is a separate step size for the first layer W (U keeps lr); e.g. the
  mean-field scaling η_W = c·r, η_U = c/r. Ignored by `random_features` (W frozen).
  """
  if regime not in REGIMES:
    raise ValueError(f"unknown regime {regime!r}; known: {REGIMES}")
  if loss not in LOSS_FNS:
    raise ValueError(f"unknown loss {loss!r}; known: {tuple(LOSS_FNS)}")
  loss_fn = LOSS_FNS[loss]

  if regime == "linearized":
    def predict(params, params0, x_nd):
      return networks.linearized_apply(params, params0, x_nd, net.activation)
  else:
    def predict(params, params0, x_nd):
      del params0
      return net.apply(params, x_nd)

  if regime == "random_features":
    labels = {"params": {"w": "frozen", "u": "sgd"}}
    opt = optax.multi_transform({"sgd": optax.sgd(lr), "frozen": optax.set_to_zero()},
                                labels)
  elif lr_w is not None:
    labels = {"params": {"w": "w", "u": "u"}}
    opt = optax.multi_transform({"w": optax.sgd(lr_w), "u": optax.sgd(lr)}, labels)
  else:
    opt = optax.sgd(lr)

  def init(params0):
    zero = jnp.zeros((), net.dtype)
    return TrainState(params=params0, params0=params0, opt_state=opt.init(params0),
                      loss_sum=zero, count=jnp.zeros((), jnp.int32))

  def objective(params, params0, x_bd, y_b):
    return jnp.mean(loss_fn(y_b, predict(params, params0, x_bd)))

  def step(state, batch):
    x_bd, y_b = batch
    value, grads = jax.value_and_grad(objective)(state.params, state.params0, x_bd, y_b)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if regime == "random_features":
      # apply_updates adds a zero to W; keep the very same array (bit-identical W_0).
      params = {"params": {"w": state.params["params"]["w"], "u": params["params"]["u"]}}
    return dataclasses.replace(state, params=params, opt_state=opt_state,
                               loss_sum=state.loss_sum + value, count=state.count + 1)

  return Trainer(init=init, step=step, predict=predict)


def metrics(trainer: Trainer, state: TrainState, x_test: jax.Array, y_test: jax.Array,
            x_probe: jax.Array, loss: str = "hinge") -> dict[str, jax.Array]:
  """Test loss and error, ‖W_t − W_0‖_F/‖W_0‖_F, ‖U_t‖, sign-flip fraction on x_probe.

  test_error is the 0-1 error 1{y·N ≤ 0} for the hinge loss and the relative squared
  error E(N − y)²/E y² for the squared loss. sign_flips is the fraction of (probe
  example, neuron) pairs with sign <w_i^t, x> ≠ sign <w_i^0, x> (the ReLU's pattern).
  """
  out = trainer.predict(state.params, state.params0, x_test)
  test_loss = jnp.mean(LOSS_FNS[loss](y_test, out))
  if loss == "hinge":
    test_error = jnp.mean((y_test * out <= 0).astype(out.dtype))
  else:
    test_error = jnp.mean((out - y_test) ** 2) / jnp.mean(y_test ** 2)
  w_rd, w0_rd = state.params["params"]["w"], state.params0["params"]["w"]
  flips = (networks.preactivation(w_rd, x_probe) >= 0) != \
          (networks.preactivation(w0_rd, x_probe) >= 0)
  train_loss = state.loss_sum / jnp.maximum(state.count, 1).astype(state.loss_sum.dtype)
  return dict(
      train_loss=jnp.where(state.count > 0, train_loss, test_loss),
      test_loss=test_loss, test_error=test_error,
      w_move=jnp.linalg.norm(w_rd - w0_rd) / jnp.linalg.norm(w0_rd),
      u_norm=jnp.linalg.norm(state.params["params"]["u"]),
      sign_flips=jnp.mean(flips.astype(out.dtype)))


def train(trainer: Trainer, params0: Params, key: jax.Array,
          sample: Callable[[jax.Array], Batch], *, steps: int, log_every: int,
          x_test: jax.Array, y_test: jax.Array, x_probe: jax.Array,
          loss: str = "hinge") -> tuple[TrainState, dict[str, jax.Array]]:
  """`steps` SGD steps on fresh batches sample(fold_in(key, t)), under lax.scan.

  Returns the final state and the metrics at steps 0, log_every, 2·log_every, ..., steps
  ([steps // log_every + 1] each). train_loss at a logged step is the mean online loss
  ℓ_t(W_t, U_t) over the steps since the previous log (progressive validation; at step 0
  it is the test loss). steps must be a multiple of log_every.
  """
  if steps % log_every:
    raise ValueError(f"steps={steps} must be a multiple of log_every={log_every}")
  state = trainer.init(params0)
  first = metrics(trainer, state, x_test, y_test, x_probe, loss)
  state, logs = train_segment(trainer, state, key, sample, start_log=0,
                              num_logs=steps // log_every, log_every=log_every,
                              x_test=x_test, y_test=y_test, x_probe=x_probe, loss=loss)
  logs = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, logs)
  return state, logs


def train_segment(trainer: Trainer, state: TrainState, key: jax.Array,
                  sample: Callable[[jax.Array], Batch], *, start_log: jax.typing.ArrayLike,
                  num_logs: int, log_every: int, x_test: jax.Array, y_test: jax.Array,
                  x_probe: jax.Array,
                  loss: str = "hinge") -> tuple[TrainState, dict[str, jax.Array]]:
  """Continues `state` by num_logs·log_every steps, from step start_log·log_every.

  The steps use the same batches sample(fold_in(key, t)) (t the global step) as one
  uninterrupted `train`, so a run split into segments (e.g. around a checkpoint) takes
  exactly the same steps. start_log may be traced (one compiled segment serves all).
  Returns the state and the metrics at the segment's num_logs log points ([num_logs]).
  """
  measure = functools.partial(metrics, trainer, x_test=x_test, y_test=y_test,
                              x_probe=x_probe, loss=loss)

  def one_step(state, t):
    return trainer.step(state, sample(jax.random.fold_in(key, t))), None

  def one_log(state, k):
    state = dataclasses.replace(state, loss_sum=jnp.zeros_like(state.loss_sum),
                                count=jnp.zeros_like(state.count))
    state, _ = jax.lax.scan(one_step, state, k * log_every + jnp.arange(log_every))
    return state, measure(state)

  return jax.lax.scan(one_log, state, start_log + jnp.arange(num_logs))
