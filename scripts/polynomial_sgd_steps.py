"""Times SGD steps of a polynomial_sgd config and projects its whole training time.

python scripts/polynomial_sgd_steps.py --variant=theory --steps=200

Runs the experiment's own compiled training segment (all three regimes, all seeds, vmapped as
in a run) at the config's first width: once for `steps` steps (compiling), then again for the
next `steps` steps, timed. Projects the training of the whole run as (seconds per step) × T ×
(number of U_0 draws); the fit of U* and the test evaluation are not included.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import sys
import time

import jax
import jax.numpy as jnp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from rfjax import sweep  # noqa: E402
from rfjax.experiments import polynomial_sgd  # noqa: E402


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--variant", default="theory")
  ap.add_argument("--steps", type=int, default=200)
  args = ap.parse_args()
  jax.config.update("jax_enable_x64", True)
  spec = importlib.util.spec_from_file_location(
      "cfg", os.path.join(ROOT, "configs", "polynomial_sgd.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(args.variant)
  r, u0 = config.widths[0], config.u0_norms[0]
  J, c = (jnp.asarray(a, jnp.float32)
          for a in polynomial_sgd.random_polynomial(config.seed, config.d, config.degree))
  keys = sweep.seed_keys(jax.random.key(config.seed), config.num_seeds)
  common = polynomial_sgd._common(config, r)
  states, _ = sweep.over_seeds(functools.partial(polynomial_sgd._start_seed, **common),
                               keys, J, c, jnp.float32(u0))
  segment = functools.partial(polynomial_sgd._segment_seed, num_logs=1, log_every=args.steps,
                              batch=config.batch, **common)
  t0 = time.perf_counter()
  states, _ = sweep.over_seeds(segment, keys, J, c, jnp.int32(0), per_seed=(states,))
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  states, logs = sweep.over_seeds(segment, keys, J, c, jnp.int32(1), per_seed=(states,))
  jax.block_until_ready(logs)
  timed = time.perf_counter() - t0
  per_step = timed / args.steps
  total = per_step * config.steps * len(config.u0_norms)
  print(json.dumps(dict(
      variant=args.variant, r=r, T=config.steps, num_seeds=config.num_seeds,
      u0_norms=list(config.u0_norms), steps_timed=args.steps,
      first_call_seconds=round(first, 2), timed_seconds=round(timed, 3),
      seconds_per_step_all_regimes_and_seeds=per_step,
      projected_training_seconds=round(total), projected_training_days=round(total / 86400, 2),
      load_average=os.getloadavg()), indent=1))


if __name__ == "__main__":
  main()
