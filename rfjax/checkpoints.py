"""Where a long cell keeps its orbax checkpoints, on one process or many.

A cell of an experiment registered with `checkpoints=True` gets the directory
`<workdir>/<experiment>/checkpoints/<cell>/` (a local path or a bucket URI). orbax writes a
checkpoint of arrays sharded over several processes collectively: every process writes its
shards into the *same* directory and process 0 the metadata. So with several processes a
checkpoint directory is given only when the workdir is one they all see, which is what a
bucket is (`gs://…`); a local workdir on a pod is each host's own disk, and there the
cells resume by cell only (`cell_dir` gives None), unless RFJAX_SHARED_WORKDIR=1 says that
the local path is on a filesystem every host mounts (NFS, gcsfuse). After the cell's rows are written the
directory is spent: every process waits for the others, then process 0 removes it.
"""
from __future__ import annotations

import os
import re
from typing import Any

import jax

from rfjax import results


def cell_dir(outdir: str, cell_key: str, *, process_count: int | None = None,
             shared: bool | None = None) -> str | None:
  """The checkpoint directory of cell `cell_key` under `outdir`, or None where several
  processes would not share it. `process_count` defaults to jax.process_count(), `shared`
  to whether `outdir` is in an object store or RFJAX_SHARED_WORKDIR=1."""
  process_count = jax.process_count() if process_count is None else process_count
  if shared is None:
    shared = results.is_remote(outdir) or os.environ.get("RFJAX_SHARED_WORKDIR") == "1"
  if process_count > 1 and not shared:
    return None
  return results.join(outdir, "checkpoints", re.sub(r"[^A-Za-z0-9._=-]+", "_", cell_key))


def remove(directory: str, *, process_index: int | None = None,
           process_count: int | None = None) -> bool:
  """Removes a spent checkpoint directory: after a barrier of all processes (so none is
  still reading or writing it), by process 0 only. Returns whether this process removed it."""
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if process_count > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(f"rfjax checkpoint done: {directory}")
  if process_index != 0:
    return False
  results.rmtree(directory)
  return True


def manager(directory: str, **options: Any):
  """An orbax CheckpointManager on `directory` (local or bucket), keeping the latest step,
  saving synchronously (a save has finished when it returns, on every process); `options`
  override CheckpointManagerOptions' fields. Returns (orbax.checkpoint, the manager)."""
  import orbax.checkpoint as ocp        # only runs that checkpoint pay for the import
  kwargs = dict(max_to_keep=1, enable_async_checkpointing=False, create=True,
                cleanup_tmp_directories=True)
  kwargs.update(options)
  return ocp, ocp.CheckpointManager(results.as_path(directory),
                                    options=ocp.CheckpointManagerOptions(**kwargs))
