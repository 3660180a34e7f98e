"""training: the hinge step of docs/theory.md ('SGD on the two-layer net') by hand, the frozen
and linearised regimes,
determinism, and vmap over seeds against a loop."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfjax import networks
from rfjax import training


def _numpy_hinge_step(w, u, x, y, lr, sigma, dsigma, regime):
  """docs/theory.md, 'SGD on the two-layer net': s = 1{yN<1}; u_i += η s y σ(<w_i,x>);
  w_i += η s y u_i σ'(<w_i,x>) x."""
  z = w @ x
  s = float(y * (sigma(z) @ u) < 1)
  u_new = u + lr * s * y * sigma(z)
  w_new = w + lr * s * y * (u * dsigma(z))[:, None] * x[None, :]
  return (w if regime == "random_features" else w_new), u_new


NP_SIGMA = dict(
    relu=(lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    sincos=(lambda z: np.sin(z) + np.cos(z), lambda z: np.cos(z) - np.sin(z)))


@pytest.mark.parametrize("activation", ["relu", "sincos"])
@pytest.mark.parametrize("regime", ["full", "random_features"])
def test_hinge_step_matches_hand_written_update(activation, regime):
  net = networks.make(r=5, activation=activation, u0_norm=1.0, dtype=jnp.float64)
  p0 = networks.init(net, jax.random.key(0), 3)
  tr = training.make_trainer(net, regime, lr=0.3, loss="hinge")
  w, u = (np.asarray(p0["params"][k]) for k in ("w", "u"))
  state = tr.init(p0)
  rng = np.random.default_rng(0)
  for _ in range(6):   # several steps: both branches of 1{yN < 1} get exercised
    x = rng.normal(size=3) / 2
    y = float(rng.choice([-1.0, 1.0]))
    state = tr.step(state, (jnp.asarray(x[None]), jnp.asarray([y])))
    w, u = _numpy_hinge_step(w, u, x, y, 0.3, *NP_SIGMA[activation], regime)
    np.testing.assert_allclose(state.params["params"]["w"], w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state.params["params"]["u"], u, rtol=1e-12, atol=1e-14)


def test_hinge_subgradient_is_zero_at_the_kink():
  g = jax.grad(lambda o: training.hinge(jnp.float64(1.0), o))
  assert float(g(jnp.float64(1.0))) == 0.0 and float(g(jnp.float64(0.5))) == -1.0


def _setup(regime, activation="sincos", loss="hinge", lr=0.05, r=32, d=4):
  net = networks.make(r=r, activation=activation, u0_norm=1.0)
  p0 = networks.init(net, jax.random.key(1), d)
  return net, p0, training.make_trainer(net, regime, lr=lr, loss=loss)


def _sample(key, d=4, batch=2):
  x = jax.random.normal(key, (batch, d), jnp.float32) / 2
  return x, _label(x)


def _label(x):
  return jnp.sign(x[:, 0] + x[:, 1] + 0.05)


def test_random_features_leaves_w_bit_identical():
  net, p0, tr = _setup("random_features")
  x = jax.random.normal(jax.random.key(5), (64, 4), jnp.float32)
  state, logs = jax.jit(functools.partial(
      training.train, tr, steps=200, log_every=50, x_test=x, y_test=jnp.sign(x[:, 0]),
      x_probe=x, sample=_sample))(p0, jax.random.key(2))
  np.testing.assert_array_equal(np.asarray(state.params["params"]["w"]),
                                np.asarray(p0["params"]["w"]))
  assert not np.array_equal(state.params["params"]["u"], p0["params"]["u"])
  assert np.all(logs["w_move"] == 0) and np.all(logs["sign_flips"] == 0)
  chex.assert_shape(logs["test_loss"], (5,))


@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_linearized_equals_full_to_first_order(loss):
  """One step from the same state: identical updates (the gradients agree at W_0), so the
  outputs of the two models then differ by O(η²)."""
  x = jax.random.normal(jax.random.key(7), (16, 4), jnp.float32) / 2
  batch = _sample(jax.random.key(8), batch=4)
  gaps = []
  for lr in (2e-3, 1e-3):   # small enough that η·∂U ≪ U_0 (else the gap is O(η³))
    outs = {}
    for regime in ("full", "linearized"):
      net, p0, tr = _setup(regime, loss=loss, lr=lr)
      with jax.enable_x64(True):
        p0 = jax.tree.map(lambda a: a.astype(jnp.float64), p0)
        net = net.clone(dtype=jnp.float64)
        tr = training.make_trainer(net, regime, lr=lr, loss=loss)
        s = tr.step(tr.init(p0), jax.tree.map(lambda a: a.astype(jnp.float64), batch))
        outs[regime] = (s.params, tr.predict(s.params, p0, x.astype(jnp.float64)))
    chex.assert_trees_all_close(outs["full"][0], outs["linearized"][0], atol=1e-12)
    gaps.append(float(jnp.max(jnp.abs(outs["full"][1] - outs["linearized"][1]))))
  assert gaps[1] > 0 and 3.5 < gaps[0] / gaps[1] < 4.5   # O(η²)


def _run_seed(key, *, regime):
  k_init, k_train = jax.random.split(key)
  net = networks.make(r=16, activation="relu")
  p0 = networks.init(net, k_init, 4)
  tr = training.make_trainer(net, regime, lr=0.5)
  x = jax.random.normal(jax.random.key(9), (32, 4), jnp.float32)
  _, logs = training.train(tr, p0, k_train, _sample, steps=40, log_every=10, x_test=x,
                           y_test=_label(x), x_probe=x)
  return logs


def test_determinism_and_vmap_equals_loop():
  keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(3), s))(jnp.arange(3))
  fn = functools.partial(_run_seed, regime="full")
  batched = jax.jit(jax.vmap(fn))(keys)
  again = jax.jit(jax.vmap(fn))(keys)
  chex.assert_trees_all_equal(batched, again)
  for s in range(3):
    single = jax.jit(fn)(keys[s])
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[s], batched), single,
                                rtol=1e-5, atol=1e-6)
  assert np.all(batched["sign_flips"][:, -1] > 0)     # full training moves ReLU patterns
  assert np.all(np.diff(batched["test_loss"][:, [0, -1]], axis=1) < 0)


def test_bad_regime_loss_and_steps():
  net = networks.make(r=4)
  with pytest.raises(ValueError, match="regime"):
    training.make_trainer(net, "nope", lr=0.1)
  with pytest.raises(ValueError, match="loss"):
    training.make_trainer(net, "full", lr=0.1, loss="nope")
  tr = training.make_trainer(net, "full", lr=0.1)
  with pytest.raises(ValueError, match="multiple"):
    training.train(tr, networks.init(net, jax.random.key(0), 2), jax.random.key(1), _sample,
                   steps=10, log_every=3, x_test=None, y_test=None, x_probe=None)


def test_train_in_two_segments_takes_the_same_steps_as_one_run():
  net = networks.make(r=6, activation="sincos", dtype=jnp.float64)
  p0 = networks.init(net, jax.random.key(1), 3)
  tr = training.make_trainer(net, "full", lr=0.2, loss="hinge")
  x_test = jax.random.normal(jax.random.key(2), (16, 3), jnp.float64)
  y_test = jnp.sign(x_test[:, 0])

  def sample(key):
    x = jax.random.normal(key, (2, 3), jnp.float64)
    return x, jnp.sign(x[:, 0])

  data = dict(x_test=x_test, y_test=y_test, x_probe=x_test[:4])
  whole, logs = training.train(tr, p0, jax.random.key(3), sample, steps=40, log_every=10,
                               **data)
  state = tr.init(p0)
  state, first = training.train_segment(tr, state, jax.random.key(3), sample, start_log=0,
                                        num_logs=1, log_every=10, **data)
  state, rest = training.train_segment(tr, state, jax.random.key(3), sample,
                                       start_log=jnp.int32(1), num_logs=3, log_every=10, **data)
  chex.assert_trees_all_close(state.params, whole.params, rtol=1e-12)
  for k in logs:
    np.testing.assert_allclose(np.concatenate([first[k], rest[k]]), logs[k][1:], rtol=1e-12,
                               err_msg=k)
  # A segment started at the wrong step draws other batches: the check can fail.
  other, _ = training.train_segment(tr, tr.init(p0), jax.random.key(3), sample, start_log=1,
                                    num_logs=1, log_every=10, **data)
  same, _ = training.train_segment(tr, tr.init(p0), jax.random.key(3), sample, start_log=0,
                                   num_logs=1, log_every=10, **data)
  assert not np.allclose(other.params["params"]["w"], same.params["params"]["w"])
