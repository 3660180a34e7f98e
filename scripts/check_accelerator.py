#!/usr/bin/env python3
"""Checks rfjax on an accelerator against the CPU: the same rows, and how fast.

  python scripts/check_accelerator.py --out /tmp/accel            # every experiment
  python scripts/check_accelerator.py --out /tmp/accel --experiments=linear_rf,integral_rep

1. Rows. Every experiment's `smoke` variant runs twice through the command line, into
   OUT/default-<backend>/ on JAX's default backend and into OUT/cpu/ with JAX_PLATFORMS=cpu, the
   same seeds (two separate runs, even when the default backend is the CPU). Their rows are matched by `key`, and every field is compared with a
   tolerance fixed here before any run (TOLERANCES): float64 exact-mode experiments to a
   relative 1e-10 (fields at rounding level, |value| below 1e-14, compare absolutely,
   except correlation fields, which are compared relatively at any size); float32 training
   experiments to a relative 1e-2 plus an absolute 5e-3 (1e-2 is what float32 reduction
   order can drift to over thousands of SGD steps; discrete fractions such as test error
   or sign flips move in steps of 1/n_test). Strings, booleans and integers must be equal;
   a row on one side only is a mismatch; wall-clock fields are skipped. Reruns resume (the
   runner's cells), so a second invocation with the same OUT only compares.
2. Times, on the default backend: the random-features fit (Monte Carlo moments of
   biased-ReLU features at n samples, r features, streamed in chunks, then a ridge solve),
   the exact-mode ReLU Gram at the largest r that fits in a third of the device's memory
   (or --gram_r), and a float32 GEMM on the same device as the reference rate.

Exit status 0 if every experiment's rows agree, 1 otherwise; a JSON report goes to
OUT/check_accelerator.json. On a CPU-only machine the backend is the CPU and the check
compares the CPU with itself (it must pass).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXACT = dict(kind="float64 exact", rtol=1e-10, atol=1e-14)
TRAINING = dict(kind="float32 training", rtol=1e-2, atol=5e-3)
# The tolerance of each experiment's rows; an experiment not named here is compared as
# EXACT (its rows come from float64 computations).
TOLERANCES: dict[str, dict[str, Any]] = {
    "integral_rep": EXACT, "rf_concentration": EXACT, "linear_rf": EXACT,
    "psi_correlation": EXACT, "relu_neuron_rf": EXACT,
    "polynomial_sgd": TRAINING, "lazy_training": TRAINING, "neuron_gd": TRAINING,
    "neuron_contrast": TRAINING,
}
# Fields compared relatively at any size (correlations resolved down to 1e-89).
RELATIVE_ONLY = ("corr",)
SKIPPED = ("seconds", "wall", "elapsed")


def _is_number(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare_values(field: str, a: Any, b: Any, tol: dict[str, Any]) -> str | None:
  """None if `a` (backend) agrees with `b` (CPU) within `tol`, else why not."""
  if isinstance(a, list) and isinstance(b, list):
    if len(a) != len(b):
      return f"lengths {len(a)} vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
      why = compare_values(field, x, y, tol)
      if why:
        return f"[{i}] {why}"
    return None
  if isinstance(a, dict) and isinstance(b, dict):
    if set(a) != set(b):
      return f"keys {sorted(set(a) ^ set(b))} differ"
    for k in a:
      why = compare_values(f"{field}.{k}", a[k], b[k], tol)
      if why:
        return f".{k} {why}"
    return None
  if isinstance(a, float) or isinstance(b, float):
    if not (_is_number(a) and _is_number(b)):
      return None if a == b else f"{a!r} vs {b!r}"
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
      return None if math.isnan(a) and math.isnan(b) else f"{a!r} vs {b!r}"
    atol = 0.0 if any(t in field for t in RELATIVE_ONLY) else tol["atol"]
    diff = abs(a - b)
    if diff <= tol["rtol"] * max(abs(a), abs(b)) + atol:
      return None
    rel = diff / max(abs(a), abs(b))
    return f"{a!r} vs {b!r} (relative difference {rel:.3g})"
  return None if a == b else f"{a!r} vs {b!r}"


def compare_rows(backend_rows: list[dict], cpu_rows: list[dict],
                 tol: dict[str, Any]) -> list[str]:
  """Every disagreement between two runs' rows, matched by key (empty: they agree)."""
  a = {r["key"]: r for r in backend_rows}
  b = {r["key"]: r for r in cpu_rows}
  problems = [f"{k}: only on the backend" for k in sorted(set(a) - set(b))]
  problems += [f"{k}: only on the CPU" for k in sorted(set(b) - set(a))]
  for key in sorted(set(a) & set(b)):
    ra, rb = a[key], b[key]
    for field in sorted(set(ra) | set(rb)):
      if any(s in field for s in SKIPPED):
        continue
      if field not in ra or field not in rb:
        problems.append(f"{key}: field {field} on one side only")
        continue
      why = compare_values(field, ra[field], rb[field], tol)
      if why:
        problems.append(f"{key}: {field} {why}")
  return problems


def _rows(workdir: str, name: str) -> list[dict]:
  sys.path.insert(0, ROOT)
  from rfjax import results
  return results.load_rows(os.path.join(workdir, name, "results.jsonl"))


def run_smoke(name: str, workdir: str, platform: str | None, extra: list[str]) -> float:
  """Runs configs/<name>.py:smoke into workdir; returns its wall time (s)."""
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [ROOT] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
  if platform:
    env["JAX_PLATFORMS"] = platform
  cmd = [sys.executable, "-m", "rfjax.main",
         f"--config={os.path.join(ROOT, 'configs', name + '.py')}:smoke",
         f"--workdir={workdir}", *extra]
  t0 = time.perf_counter()
  res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
  if res.returncode != 0:
    raise RuntimeError(f"{name} on {platform or 'the default backend'} failed "
                       f"(exit {res.returncode}):\n{res.stderr[-3000:]}")
  return time.perf_counter() - t0


def check_rows(names: list[str], out: str, backend: str,
               extra: dict[str, list[str]]) -> dict[str, Any]:
  report = {}
  for name in names:
    tol = TOLERANCES.get(name, EXACT)
    dev_dir, cpu_dir = os.path.join(out, f"default-{backend}"), os.path.join(out, "cpu")
    t_dev = run_smoke(name, dev_dir, None, extra.get(name, []))
    t_cpu = run_smoke(name, cpu_dir, "cpu", extra.get(name, []))
    problems = compare_rows(_rows(dev_dir, name), _rows(cpu_dir, name), tol)
    report[name] = dict(tolerance=tol, rows=len(_rows(cpu_dir, name)),
                        agree=not problems, mismatches=len(problems), first=problems[:10],
                        seconds_backend=round(t_dev, 2), seconds_cpu=round(t_cpu, 2))
    print(f"{name:18s} {tol['kind']:17s} rows {report[name]['rows']:6d}  "
          f"{'agree' if not problems else f'{len(problems)} MISMATCHES'}  "
          f"({t_dev:.1f} s {backend}, {t_cpu:.1f} s cpu)", flush=True)
    for p in problems[:5]:
      print(f"    {p}", flush=True)
  return report


def _timed(fn, *args, repeats: int = 3) -> float:
  """Median wall time of fn(*args) after one warm-up (compilation) call."""
  import jax
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return sorted(times)[len(times) // 2]


def _memory_bytes() -> int | None:
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("bytes_limit")


def timings(fit_n: int, fit_r: int, fit_d: int, chunk: int, gram_r: int, gram_d: int,
            gemm_n: int) -> dict[str, Any]:
  """Times on the default backend (see the module docstring)."""
  sys.path.insert(0, ROOT)
  import jax
  import jax.numpy as jnp
  jax.config.update("jax_enable_x64", True)
  from rfjax import features
  from rfjax import gaussian
  from rfjax import solvers

  out: dict[str, Any] = dict(backend=jax.default_backend(),
                             device=str(jax.devices()[0].device_kind),
                             memory_bytes=_memory_bytes())
  key = jax.random.key(0)
  a = jax.random.normal(key, (gemm_n, gemm_n), jnp.float32)
  gemm = jax.jit(lambda x: jnp.matmul(x, x))
  t = _timed(gemm, a)
  out["gemm"] = dict(n=gemm_n, dtype="float32", seconds=t, gflops=2 * gemm_n**3 / t / 1e9)
  del a

  fm = features.get("relu_biased")
  params = fm.init(jax.random.key(1), fit_d, fit_r)
  w_star = jnp.zeros(fit_d).at[0].set(1.0)

  @jax.jit
  def fit(params):
    m = solvers.sample_moments(fm.apply, params, lambda x: jnp.maximum(x @ w_star, 0),
                               jax.random.key(2), n=fit_n, chunk=chunk, d=fit_d,
                               dtype=jnp.float32)
    u, u0 = solvers.ridge(m, 1e-3)
    return solvers.error(m, u, u0)

  t = _timed(fit, params, repeats=1)
  flops = fit_n * fit_r**2 + 2.0 * fit_n * fit_d * fit_r + 2.0 * fit_n * fit_r
  out["rf_fit"] = dict(n=fit_n, r=fit_r, d=fit_d, chunk=chunk, seconds=t,
                       gflops=flops / t / 1e9,
                       gemm_fraction=flops / t / 1e9 / out["gemm"]["gflops"],
                       error=float(fit(params)))

  if not gram_r:      # the largest power-of-2 multiple of 1024 whose Gram takes ≤ 1/3 memory
    mem = out["memory_bytes"] or 8 * 2**30
    gram_r = 1024
    while 8 * (2 * gram_r) ** 2 <= mem / 3 and gram_r < 2**17:
      gram_r *= 2
  gparams = fm.init(jax.random.key(3), gram_d, gram_r)
  form = fm.ridge(gparams)
  gram = jax.jit(lambda w, b: gaussian.ridge_gram(
      features.RidgeForm(w, b, form.activation)))
  try:
    t = _timed(gram, jnp.asarray(form.w_dr, jnp.float64), jnp.asarray(form.b_r, jnp.float64),
               repeats=1)
    out["exact_gram"] = dict(r=gram_r, d=gram_d, dtype="float64", seconds=t)
  except Exception as e:  # noqa: BLE001 - out of memory: report it, do not hide the rest.
    out["exact_gram"] = dict(r=gram_r, d=gram_d, error=f"{type(e).__name__}: {e}"[:300])
  return out


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True, help="directory for both runs and the report")
  p.add_argument("--experiments", default="", help="comma-separated (default: all)")
  p.add_argument("--extra", action="append", default=[],
                 help="NAME:--config.FIELD=VALUE, an override for one experiment's runs "
                      "(both sides); repeatable")
  p.add_argument("--no_rows", action="store_true", help="only the timings")
  p.add_argument("--no_timings", action="store_true", help="only the rows")
  p.add_argument("--fit_n", type=int, default=10_000_000)
  p.add_argument("--fit_r", type=int, default=16_384)
  p.add_argument("--fit_d", type=int, default=16)
  p.add_argument("--chunk", type=int, default=4096)
  p.add_argument("--gram_r", type=int, default=0, help="0: the largest that fits")
  p.add_argument("--gram_d", type=int, default=5)
  p.add_argument("--gemm_n", type=int, default=8192)
  args = p.parse_args(argv)

  sys.path.insert(0, ROOT)
  os.environ.setdefault("MPLBACKEND", "Agg")
  # This process and the runs it starts share the device: none takes most of its memory.
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  from rfjax import experiments  # noqa: F401 - fills the registry
  from rfjax import runner  # noqa: F401
  known = experiments.names()
  names = [n for n in args.experiments.split(",") if n] or known
  unknown = [n for n in names if n not in known]
  if unknown:
    p.error(f"--experiments: unknown {', '.join(unknown)}; allowed: {', '.join(known)}")
  extra: dict[str, list[str]] = {}
  for e in args.extra:
    name, _, flag = e.partition(":")
    if name not in known or not flag.startswith("--"):
      p.error(f"--extra: expected NAME:--config.FIELD=VALUE, got {e!r}")
    extra.setdefault(name, []).append(flag)

  import jax
  backend = jax.default_backend()
  os.makedirs(args.out, exist_ok=True)
  report: dict[str, Any] = dict(backend=backend, devices=[str(d) for d in jax.devices()])
  print(f"backend: {backend} ({jax.devices()[0].device_kind}, {jax.device_count()} devices)",
        flush=True)
  if not args.no_rows:
    report["rows"] = check_rows(names, args.out, backend, extra)
  if not args.no_timings:
    report["timings"] = timings(args.fit_n, args.fit_r, args.fit_d, args.chunk, args.gram_r,
                                args.gram_d, args.gemm_n)
    t = report["timings"]
    print(f"GEMM n={t['gemm']['n']} float32: {t['gemm']['seconds']:.4f} s, "
          f"{t['gemm']['gflops']:.1f} GFLOP/s", flush=True)
    f = t["rf_fit"]
    print(f"RF fit n={f['n']} r={f['r']} d={f['d']}: {f['seconds']:.3f} s, "
          f"{f['gflops']:.1f} GFLOP/s = {f['gemm_fraction']:.2f} of the GEMM rate", flush=True)
    g = t["exact_gram"]
    print(f"exact ReLU Gram r={g['r']} d={g['d']} float64: "
          + (f"{g['seconds']:.3f} s" if "seconds" in g else g["error"]), flush=True)
  ok = all(r["agree"] for r in report.get("rows", {}).values())
  report["agree"] = ok
  with open(os.path.join(args.out, "check_accelerator.json"), "w") as fh:
    json.dump(report, fh, indent=1, sort_keys=True)
  print("rows agree with the CPU" if ok else "ROWS DISAGREE WITH THE CPU", flush=True)
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
