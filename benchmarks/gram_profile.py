"""Where the RF fit's Gram time goes: rfjax's streamed Gram against BLAS ssyrk on the same chunks.

python benchmarks/gram_profile.py [--n 100000] [--r 2048] [--chunk 2048] [--rounds 3]

The RF ridge fit's cost is the Gram ΦᵀΦ (n r² multiply-adds counted once, as a symmetric
rank-k update does them). Each case below runs in its own process (so that BLAS thread counts
and XLA flags apply from the start), one warm-up and three timed passes, best of the three; the
cases take turns for `--rounds` rounds. Rates are GFLOP/s counting n r² for the Gram (plus
2 n d r for the features where they are formed), so every case is on the same scale:

  gemm_numpy / gemm_xla   float32 4096² GEMM by numpy (OpenBLAS) and by XLA (2·4096³ FLOPs)
  rfjax_panelP            `solvers.data_moments`, Gram as block upper-triangle XLA dots with
                          row panels of about P features (rfjax's default P = 384)
  rfjax_full              the same with one full product per chunk (P = r: 2 n r² FLOPs done)
  rfjax_features          the same scan with the Gram left out (features, Φᵀy and sums only)
  rfjax_syrk, _1t         `data_moments(gram="syrk")`: scipy's ssyrk per chunk from a host
                          callback; `_1t` with one OpenBLAS thread
  blas_ssyrk, _1t         scipy's ssyrk alone on one chunk's Φ, n / chunk times: the ceiling
  numpy_gram              numpy's Φᵀ Φ on the same chunk (what the numpy peer calls)
  blas_2x1t               two Python threads, each one-thread ssyrk on half of the chunk's
                          rows: cpu / wall near 2 only if the BLAS wrapper releases the GIL
  rfjax_panel384_<lib>    rfjax_panel384 with XLA's dots given to a library by XLA_FLAGS
  gemm_xla_<lib>          (xnn: XNNPACK, ynn: YNNPACK, onednn: oneDNN)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIB_FLAGS = {
    "xnn": "--xla_cpu_experimental_xnn_fusion_type=dot",
    "ynn": "--xla_cpu_experimental_ynn_fusion_type=dot",
    "onednn": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot",
}
CASES = (["gemm_numpy", "gemm_xla", "rfjax_panel256", "rfjax_panel384", "rfjax_panel512",
          "rfjax_full", "rfjax_features", "rfjax_syrk", "rfjax_syrk_1t", "blas_ssyrk",
          "blas_ssyrk_1t", "numpy_gram", "blas_2x1t"]
         + [f"{k}_{lib}" for lib in LIB_FLAGS for k in ("gemm_xla", "rfjax_panel384")])


def case_env(case: str) -> dict:
  env = dict(os.environ)
  if case.endswith("_1t") or case == "blas_2x1t":
    env["OPENBLAS_NUM_THREADS"] = "1"
  lib = case.rsplit("_", 1)[-1]
  if lib in LIB_FLAGS:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + LIB_FLAGS[lib]).strip()
  return env


def _timed(fn, reps: int = 3) -> tuple[float, float]:
  """Best wall seconds of `reps` calls after one warm-up, and cpu / wall over them."""
  fn()
  walls, cpus = [], []
  for _ in range(reps):
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    walls.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
  return min(walls), sum(cpus) / sum(walls)


def run_case(case: str, n: int, r: int, chunk: int, d: int = 64) -> dict:
  """Times one case in this process; returns its counted FLOPs, seconds and cpu / wall."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  if case.startswith("gemm"):
    a = rng.standard_normal((4096, 4096)).astype(np.float32)
    if case == "gemm_numpy":
      fn = lambda: a @ a  # noqa: E731
    else:
      import jax  # pylint: disable=import-outside-toplevel
      f, A = jax.jit(lambda a: a @ a), jax.numpy.asarray(a)
      fn = lambda: f(A).block_until_ready()  # noqa: E731
    t, cw = _timed(fn)
    return dict(flops=2 * 4096.0 ** 3, seconds=t, cpu_per_wall=cw)
  if case.startswith(("blas", "numpy")):
    import scipy.linalg.blas as blas  # pylint: disable=import-outside-toplevel
    phi = np.maximum(rng.standard_normal((chunk, r)).astype(np.float32), 0)
    c = np.zeros((r, r), np.float32)
    c2 = np.zeros((r, r), np.float32)
    k = max(1, n // chunk)

    def syrk(p, cc):
      blas.ssyrk(1.0, p.T, beta=1.0, c=cc.T, trans=0, lower=1, overwrite_c=1)
    if case == "numpy_gram":
      one = lambda: phi.T @ phi  # noqa: E731
    elif case == "blas_2x1t":
      pool, h = ThreadPoolExecutor(2), chunk // 2

      def one():
        a, b = pool.submit(syrk, phi[:h], c), pool.submit(syrk, phi[h:], c2)
        a.result()
        b.result()
    else:
      one = lambda: syrk(phi, c)  # noqa: E731

    def fn():
      for _ in range(k):
        one()
    t, cw = _timed(fn)
    return dict(flops=float(k * chunk) * r * r, seconds=t, cpu_per_wall=cw)
  sys.path[:0] = [str(HERE), str(HERE.parent)]
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import workloads  # pylint: disable=import-outside-toplevel
  from rfjax import features, solvers  # pylint: disable=import-outside-toplevel
  base = case.split("_")[1]   # rfjax_<base>[_1t | _<lib>]
  data = workloads.ridge_data(dict(n=n, d=d, r=r, n_test=1, seed=0))   # the ridge case's data
  x, y = jnp.asarray(data["x_nd"]), jnp.asarray(data["y_n"])
  params = {"w_dr": jnp.asarray(data["w_dr"]), "b_r": jnp.zeros((r,), jnp.float32)}
  fm = features.get("relu_sphere")
  gram = "syrk" if base.startswith("syrk") else "xla"
  if base.startswith("panel"):
    solvers._PANEL = int(base[5:])  # pylint: disable=protected-access
  elif base == "full":
    solvers._PANEL = r  # pylint: disable=protected-access
  if base == "features":
    def moments(params, x, y):
      def body(acc, i):
        xc = jax.lax.dynamic_slice_in_dim(x, i * chunk, chunk)
        yc = jax.lax.dynamic_slice_in_dim(y, i * chunk, chunk)
        phi = fm.apply(params, xc)
        return (acc[0] + phi.sum(0), acc[1] + yc @ phi), None
      return jax.lax.scan(body, (jnp.zeros(r), jnp.zeros(r)), jnp.arange(n // chunk))[0]
  else:
    def moments(params, x, y):
      return solvers.data_moments(fm.apply, params, x, y, chunk=chunk, gram=gram).G_rr
  f = jax.jit(moments)
  t, cw = _timed(lambda: jax.block_until_ready(f(params, x, y)))
  gram_flops = 0.0 if base == "features" else float(n) * r * r
  return dict(flops=gram_flops + 2.0 * n * d * r, seconds=t, cpu_per_wall=cw)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--n", type=int, default=100_000)
  ap.add_argument("--r", type=int, default=2048)
  ap.add_argument("--chunk", type=int, default=2048)
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
  ap.add_argument("--case", default="", help=argparse.SUPPRESS)
  ap.add_argument("--out", default="", help="write the raw results as JSON here")
  args = ap.parse_args()
  if args.case:
    print(json.dumps(run_case(args.case, args.n, args.r, args.chunk)))
    return
  cases = [c for c in args.cases.split(",") if c]
  unknown = sorted(set(cases) - set(CASES))
  if unknown:
    ap.error(f"--cases: unknown {unknown}; known: {', '.join(CASES)}")
  res: dict[str, list[dict]] = {c: [] for c in cases}
  load = [os.getloadavg()[0]]
  for k in range(args.rounds):
    for c in cases:
      cmd = [sys.executable, __file__, "--case", c, "--n", str(args.n), "--r", str(args.r),
             "--chunk", str(args.chunk)]
      out = subprocess.run(cmd, env=case_env(c), capture_output=True, text=True, check=True)
      res[c].append(json.loads(out.stdout.strip().splitlines()[-1]))
      print(f"[round {k + 1}/{args.rounds}] {c}: "
            f"{res[c][-1]['flops'] / res[c][-1]['seconds'] / 1e9:.0f} GFLOP/s", file=sys.stderr)
    load.append(os.getloadavg()[0])
  ref = "blas_ssyrk" if "blas_ssyrk" in res else None
  ref_rate = statistics.median(v["flops"] / v["seconds"] for v in res[ref]) if ref else None
  print(f"n = {args.n}, r = {args.r}, chunk = {args.chunk}, {args.rounds} rounds, "
        f"load average (1 min) {min(load):.1f}-{max(load):.1f}")
  print(f"{'case':<24} {'GFLOP/s min / median / max':>28} {'/ blas_ssyrk':>13} {'cpu/wall':>9}")
  for c, vs in res.items():
    rates = sorted(v["flops"] / v["seconds"] / 1e9 for v in vs)
    rel = f"{statistics.median(rates) * 1e9 / ref_rate:.2f}" if ref_rate else "-"
    cw = statistics.median(v["cpu_per_wall"] for v in vs)
    print(f"{c:<24} {rates[0]:>8.0f} / {statistics.median(rates):>5.0f} / {rates[-1]:>5.0f}"
          f"      {rel:>13} {cw:>9.2f}")
  if args.out:
    Path(args.out).write_text(json.dumps(dict(params=vars(args), load=load, results=res),
                                         indent=1))


if __name__ == "__main__":
  main()
