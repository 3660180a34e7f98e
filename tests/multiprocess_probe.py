"""One process of a multi-process run on CPU (jax.distributed, gloo collectives), for
tests/test_workdirs.py: a probe experiment whose cells train a state sharded over every
process's device, saved with orbax into the shared workdir after each step.

  python multiprocess_probe.py PROCESS_ID NUM_PROCESSES PORT WORKDIR STEPS CHECKPOINT KILL_AT

KILL_AT > 0 makes every process exit with status 17 right after the checkpoint of that step
(of the first cell), as a preemption of the whole slice would. Prints the rows' keys and
the step each cell started from.
"""
import os
import sys

import jax

pid, nproc, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
workdir, steps, use_ckpt, kill_at = sys.argv[4], int(sys.argv[5]), sys.argv[6] == "1", \
    int(sys.argv[7])
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.config.update("jax_enable_x64", True)
jax.distributed.initialize(f"localhost:{port}", num_processes=nproc, process_id=pid)

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import ml_collections as mlc  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from rfjax import checkpoints  # noqa: E402
from rfjax import experiments  # noqa: E402
from rfjax import runner  # noqa: E402
from rfjax import verdicts  # noqa: E402

NAME = "multiprocess_probe"
MESH = Mesh(np.array(jax.devices()), ("seeds",))
SHARDED = NamedSharding(MESH, P("seeds"))
STARTS = {}


@jax.jit
def _step(x, a, noise):
  return x * a + 1 + noise


def run_cell(config, cell, key, checkpoint_dir=None):
  n = config.num_seeds
  noise = jax.device_put(jax.random.uniform(key, (n,), jnp.float64), SHARDED)
  x = jax.device_put(jnp.zeros((n,), jnp.float64), SHARDED)
  start, manager = 0, None
  if checkpoint_dir is not None and config.checkpoint:
    ocp, manager = checkpoints.manager(checkpoint_dir)
    if manager.latest_step() is not None:
      start = manager.latest_step()
      target = jax.ShapeDtypeStruct((n,), jnp.float64, sharding=SHARDED)
      x = manager.restore(start, args=ocp.args.StandardRestore(dict(x=target)))["x"]
  STARTS[cell["a"]] = start
  for step in range(start, config.steps):
    x = _step(x, 0.5 + cell["a"], noise)
    if manager is not None:
      manager.save(step + 1, args=ocp.args.StandardSave(dict(x=x)))
      if kill_at == step + 1:
        manager.close()
        print(f"process {pid}: killed after step {step + 1}", flush=True)
        os._exit(17)
  if manager is not None:
    manager.close()
  xs = np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return [dict(a=cell["a"], seed=s, x=float(xs[s])) for s in range(n)]


def summarize(config, rows):
  mean = float(np.mean([r["x"] for r in rows]))
  return dict(claim="probe", prediction="finite", measured=f"mean x {mean:.6g}",
              **verdicts.fields(verdicts.judge(bool(np.isfinite(mean))),
                                would_fail_if="a non-finite mean", departures="a probe"))


experiments.EXPERIMENTS.register(NAME, experiments.Experiment(
    validate=lambda c: None, cells=lambda c: [dict(a=a) for a in c.alphas],
    run_cell=run_cell, summarize=summarize, claim="probe", checkpoints=True,
    figure=lambda config, rows, summary: plt.subplots()[0], row_id_fields=("seed",)))

c = mlc.ConfigDict()
c.experiment, c.seed, c.num_seeds, c.steps, c.checkpoint = NAME, 0, 4 * nproc, steps, use_ckpt
c.alphas = (0.0, 0.1)
runner.run_all(c, workdir)
print(f"process {pid}: starts {sorted(STARTS.items())}", flush=True)
