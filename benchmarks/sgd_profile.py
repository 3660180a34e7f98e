"""Where an SGD step's time goes: rfjax's step against a hand-written step of the same math.

python benchmarks/sgd_profile.py [--steps 2000] [--rounds 5]

For batch 1 and 64 (d = 32, r = 4096, hinge loss, the benchmark's data), times per step:
  rfjax_uK     rfjax.training's step (flax net, jax.grad, optax.sgd) under lax.scan(unroll=K)
  minimal_uK   the same step with the gradient written by hand in plain jnp
  blocksB      the hand-written step with W split into B row blocks (independent products)
and, alone, the step's two products ([r, d]·[d, b] forward, [r, b]·[b, d] for ∂W) and numpy's
float32 GEMM at n = 1024 for scale. Implementations take turns, median of `--rounds`. The blocked
variants are checked to give the same W as the unblocked one.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
import workloads  # noqa: E402  pylint: disable=wrong-import-position
from rfjax import networks, training  # noqa: E402  pylint: disable=wrong-import-position


def rfjax_step(p: dict, unroll: int):
  data = workloads.sgd_data(p)
  net = networks.make(p["r"])
  params0 = {"params": {"w": jnp.asarray(data["w0"]), "u": jnp.zeros((p["r"],), jnp.float32)}}
  trainer = training.make_trainer(net, "full", p["lr"], "hinge")

  @jax.jit
  def train(params0, x, y):
    state, _ = jax.lax.scan(lambda s, b: (trainer.step(s, b), None), trainer.init(params0),
                            (x, y), unroll=unroll)
    return state.params["params"]["w"]
  x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
  return lambda: jax.block_until_ready(train(params0, x, y))


def minimal_step(p: dict, unroll: int, blocks: int = 1):
  """mean hinge(y, relu(x Wᵀ) u), its gradient by hand; W in `blocks` row blocks."""
  data = workloads.sgd_data(p)
  lr = p["lr"]

  def step(carry, batch):
    ws, u_r = carry
    x_bd, y_b = batch
    zs = [jnp.matmul(w, x_bd.T, precision="highest") for w in ws]
    us = jnp.split(u_r, blocks)
    out_b = sum(ub @ jnp.maximum(z, 0) for ub, z in zip(us, zs))
    g_b = jnp.where(y_b * out_b < 1, -y_b, 0.0) / x_bd.shape[0]
    gus = [jnp.maximum(z, 0) @ g_b for z in zs]
    new_ws = [w - lr * jnp.matmul((ub[:, None] * g_b[None, :]) * (z > 0), x_bd,
                                  precision="highest") for w, ub, z in zip(ws, us, zs)]
    return (new_ws, u_r - lr * jnp.concatenate(gus)), None

  @jax.jit
  def train(w, u, x, y):
    (ws, _), _ = jax.lax.scan(step, (jnp.split(w, blocks), u), (x, y), unroll=unroll)
    return jnp.concatenate(ws)
  w0, u0 = jnp.asarray(data["w0"]), jnp.zeros((p["r"],), jnp.float32)
  x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
  return lambda: jax.block_until_ready(train(w0, u0, x, y))


def product(fn, shapes, reps: int = 200):
  """One product repeated `reps` times in a scan, each depending on the last (no hoisting)."""
  rng = np.random.default_rng(0)
  a, b = (jnp.asarray(rng.standard_normal(s, dtype=np.float32)) for s in shapes)

  @jax.jit
  def go(a, b):
    def body(c, _):
      return c + 1e-9 * fn(a, b + c).ravel()[0], None
    return jax.lax.scan(body, jnp.float32(0), None, length=reps)[0]
  return lambda: jax.block_until_ready(go(a, b)), reps


def interleaved(fns: dict, rounds: int) -> dict[str, list[float]]:
  for f in fns.values():
    f()
  times = {k: [] for k in fns}
  for _ in range(rounds):
    for k, f in fns.items():
      t = time.perf_counter()
      f()
      times[k].append(time.perf_counter() - t)
  return times


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
  t = statistics.median(interleaved({"gemm": lambda: a @ a}, 20)["gemm"])
  print(f"numpy float32 GEMM n=1024: {2 * 1024**3 / t / 1e9:.1f} GFLOP/s")
  for b in (1, 64):
    p = dict(d=32, r=4096, steps=args.steps, batch=b, lr=0.05, seed=0, n_test=1000)
    fns = {f"rfjax_u{u}": rfjax_step(p, u) for u in (1, 4)}
    fns.update({f"minimal_u{u}": minimal_step(p, u) for u in (1, 4)})
    fns.update({f"blocks{k}": minimal_step(p, 4, k) for k in (2, 4)})
    ref = np.asarray(fns["minimal_u4"]())
    for k in ("blocks2", "blocks4"):
      same = np.array_equal(np.asarray(fns[k]()), ref)
      print(f"b={b} {k}: W {'equal' if same else 'DIFFERS'} to the unblocked step's")
    flops = workloads.flops("sgd", p)
    for k, v in interleaved(fns, args.rounds).items():
      med = statistics.median(v)
      print(f"b={b} {k:11s} {med * 1e6 / args.steps:8.1f} µs/step "
            f"(min {min(v) * 1e6 / args.steps:.1f})  {flops / med / 1e9:6.1f} GFLOP/s")
  r, d, b = 4096, 32, 64
  prods = {"forward [r,d]·[d,b]": product(lambda w, x: w @ x.T, [(r, d), (b, d)]),
           "dW [r,b]·[b,d]": product(lambda g, x: g @ x, [(r, b), (b, d)])}
  times = interleaved({k: f for k, (f, _) in prods.items()}, args.rounds)
  for k, v in times.items():
    per = statistics.median(v) / prods[k][1]
    print(f"product {k:20s} {per * 1e6:7.1f} µs  {2 * r * d * b / per / 1e9:6.1f} GFLOP/s")


if __name__ == "__main__":
  main()
