"""rfjax against the tools a researcher would otherwise use: numpy/scipy, scikit-learn, PyTorch.

python benchmarks/run.py [--quick] [--only ridge,sgd,...] [--runs 5] [--repeat 3] [--out FILE]

Each implementation of a case runs in its own worker process (so its peak memory is its
own); the workers of a case are started together, each builds its data and compiles
outside the timing, then they take turns, A B C A B C ..., one warm-up round and then
`--runs` timed rounds, so that drift of a shared machine hits all of them. A case reports
the median time, the peak resident memory of the worker during a timed run ("peak") and
that peak above the worker's resident size just before the run ("work", the memory the
computation itself needed), the ratio peer time / rfjax time, and, for FLOP-bound work,
the fraction of the machine's GEMM rate (numpy float32 matmul at n = 4096), measured in
the same invocation: once first, and again inside every FLOP-bound case by a GEMM worker
that takes its turns with the implementations, so the case's fraction uses the rate the
machine gave while the case ran (for the long single-run scaling cases it runs once,
after the implementation, so there it dates less precisely). The table is printed and written as JSON (default
benchmarks/results/latest.json), together with the speed targets and the checks that
every implementation computed the same answer.

`--repeat K` runs the whole rotation K times, each with fresh workers, and reports every
target's value as min / median / max over the K repeats with the machine's load average
around each repeat. A target is met only if its worst repeat meets it (the minimum for a
"≥" target, the maximum for a "≤" one): a shared machine's good moment is not a result.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import workloads  # noqa: E402  pylint: disable=wrong-import-position

MiB = 1 << 20
GEMM_REF = "gemm_ref"


# ----------------------------------------------------------------------------- worker side


def _proc_status() -> dict[str, int]:
  """VmRSS and VmHWM of this process in bytes ({} where /proc is unavailable)."""
  out = {}
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
          out[key] = int(rest.split()[0]) * 1024
  except OSError:
    pass
  return out


def _reset_peak() -> bool:
  """Resets this process's resident-memory high-water mark (Linux clear_refs)."""
  try:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
      f.write("5")
    return True
  except OSError:
    return False


def worker() -> None:
  """Serves one implementation: reads JSON commands on stdin, answers on the real stdout."""
  proto = os.fdopen(os.dup(1), "w", buffering=1)
  os.dup2(2, 1)                    # library output goes to stderr, not into the protocol
  spec = json.loads(sys.stdin.readline())
  t0 = time.perf_counter()
  run = workloads.IMPLS[spec["workload"]][spec["impl"]](spec["params"])
  proto.write(json.dumps(dict(ready=True, setup_s=time.perf_counter() - t0)) + "\n")
  for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["cmd"] == "stop":
      maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
      proto.write(json.dumps(dict(maxrss=maxrss)) + "\n")
      return
    reset = _reset_peak()
    base = _proc_status().get("VmRSS")
    t = time.perf_counter()
    out = run()
    elapsed = time.perf_counter() - t
    st = _proc_status()
    peak = st.get("VmHWM") if reset else None
    if peak is None:
      peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    work = peak - base if (reset and base is not None) else None
    proto.write(json.dumps(dict(time=elapsed, peak=peak, work=work, out=out)) + "\n")


# ----------------------------------------------------------------------------- parent side


class Worker:
  """One implementation in its own process."""

  def __init__(self, workload: str, impl: str, params: dict):
    self.impl = impl
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env=env, bufsize=1)
    self._send(dict(workload=workload, impl=impl, params=params))

  def _send(self, msg: dict) -> None:
    self.proc.stdin.write(json.dumps(msg) + "\n")
    self.proc.stdin.flush()

  def recv(self) -> dict:
    line = self.proc.stdout.readline()
    if not line:
      self.proc.wait()
      raise RuntimeError(f"worker {self.impl} died (exit {self.proc.returncode})")
    return json.loads(line)

  def run(self) -> dict:
    self._send(dict(cmd="run"))
    return self.recv()

  def stop(self) -> dict:
    self._send(dict(cmd="stop"))
    out = self.recv()
    self.proc.wait()
    return out


def run_case(case: dict, log) -> dict:
  """Runs one case: workers started together, then warm-up and timed rounds in turn."""
  workers = [Worker(case["workload"], impl, case["params"]) for impl in case["impls"]]
  if case.get("gemm_n"):       # the GEMM reference takes its turns too: same drift, same load
    workers.append(Worker("gemm", "numpy", dict(n=case["gemm_n"])))
    workers[-1].impl = GEMM_REF
  try:
    ready = [w.recv() for w in workers]
    for _ in range(case["warmup"]):
      for w in workers:
        w.run()
    runs = {w.impl: [] for w in workers}
    for rnd in range(case["runs"]):
      order = workers if rnd % 2 == 0 else workers[::-1]     # A B, then B A: no fixed slot
      for w in order:
        runs[w.impl].append(w.run())
    stops = [w.stop() for w in workers]
  except BaseException:
    for w in workers:
      w.proc.kill()
    raise
  impls = {}
  for w, rd, st in zip(workers, ready, stops):
    rs = runs[w.impl]
    times = [r["time"] for r in rs]
    works = [r["work"] for r in rs if r["work"] is not None]
    impls[w.impl] = dict(
        time_s=statistics.median(times), times_s=times,
        peak_mib=max(r["peak"] for r in rs) / MiB,
        work_mib=(max(works) / MiB) if works else None,
        maxrss_mib=st["maxrss"] / MiB, setup_s=rd["setup_s"], out=rs[-1]["out"])
  gemm = impls.pop(GEMM_REF, None)
  result = dict(name=case["name"], workload=case["workload"], params=case["params"],
                runs=case["runs"], warmup=case["warmup"], impls=impls)
  if gemm is not None:
    result["gemm_gflops"] = 2.0 * case["gemm_n"] ** 3 / gemm["time_s"] / 1e9
    result["gemm_times_s"] = gemm["times_s"]
  log(f"  {case['name']}: " + ", ".join(f"{k} {v['time_s']:.3g}s" for k, v in impls.items()))
  return result


# ----------------------------------------------------------------------------- cases


def make_cases(args) -> list[dict]:
  """The cases of this invocation (sizes by --quick and flags)."""
  q = args.quick
  runs = args.runs
  cases = [dict(name="gemm", workload="gemm", impls=["numpy"], params=dict(n=2048 if q else 4096),
                runs=runs)]
  ridge = dict(n=args.n or (20_000 if q else 200_000), d=64, r=args.r or (512 if q else 2048),
               lam=1e-3, chunk=2048, n_test=10_000, seed=0)
  cases.append(dict(name="ridge", workload="ridge", params=ridge, runs=runs,
                    impls=["rfjax", "numpy_scipy", "sklearn", "torch"]))
  for b in (1, 64):
    sgd = dict(d=32, r=512 if q else 4096, steps=200 if q else 2000, batch=b, lr=0.05,
               n_test=4096, seed=0)
    cases.append(dict(name=f"sgd_b{b}", workload="sgd", params=sgd, runs=runs,
                      impls=["rfjax", "torch", "torch_1thread"]))
  sw = dict(n=4000 if q else 20_000, d=64, r=128 if q else 512, seeds=8 if q else 32, lam=1e-3,
            chunk=2000, n_test=2000, seed=0, seed_batch=args.seed_batch)
  cases.append(dict(name="sweep", workload="sweep", params=sw, runs=runs,
                    impls=["rfjax", "numpy_loop"]))
  ps = dict(d=20, r=64 if q else 256, w_stars=8 if q else 32, mc_n=(1 << 16) if q else (1 << 20),
            mc_chunk=8192, seed=0)
  cases.append(dict(name="psi", workload="psi", params=ps, runs=runs,
                    impls=["rfjax_exact", "rfjax_mc"]))
  # The certified box-fit path: 20 values of B on one exact Gram; the peer (quadprog) on a
  # stated subset of them (all of them in --quick), compared value by value at its own gap.
  bp_r = 256 if q else 4096
  peer = list(range(20)) if q else [int(v) for v in args.boxpath_peer_values.split(",")]
  bp = dict(d=4, r=bp_r, values=20, seed=0, peer_values=peer)
  cases.append(dict(name="boxpath", workload="boxpath", params=bp, impls=["rfjax", "quadprog"],
                    runs=runs if q else min(runs, 3)))
  scaling_r = args.scaling_r or (256 if q else 2048)
  ns = [int(float(v)) for v in args.scaling_n.split(",")] if args.scaling_n else (
      [10_000, 100_000] if q else [100_000, 1_000_000, 10_000_000])
  for n in ns:
    sc = dict(n=n, d=64, r=scaling_r, lam=1e-3, chunk=4096, n_test=10_000, seed=0)
    impls = ["rfjax"]
    phi_bytes = 2 * n * scaling_r * 4          # Φ and the temporary X W
    if phi_bytes <= args.peer_mem_gib * (1 << 30):
      impls.append("numpy_scipy")
    big = n * scaling_r * scaling_r > args.single_run_flops
    cases.append(dict(name=f"scaling_n{n:.0e}".replace("+0", ""), workload="scaling",
                      params=sc, impls=impls, runs=1 if big else runs, warmup=0 if big else 1))
  for c in cases:
    c.setdefault("warmup", 1)
    if workloads.flops(c["workload"], c["params"]) is not None and c["workload"] != "gemm":
      c["gemm_n"] = cases[0]["params"]["n"]
  if args.only:
    keep = set(args.only.split(","))
    cases = [c for c in cases if c["workload"] in keep or c["name"] in keep or c["name"] == "gemm"]
  return cases


# ----------------------------------------------------------------------------- summary


def _rel(a: float, b: float) -> float:
  return abs(a - b) / max(abs(b), 1e-300)


def summarise(results: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
  """(rows of the table, targets, agreement checks)."""
  by = {r["name"]: r for r in results}
  first_rate = workloads.flops("gemm", by["gemm"]["params"]) / by["gemm"]["impls"]["numpy"]["time_s"]

  def rate(name):
    """The GEMM rate measured in turns with the case's implementations (FLOP/s)."""
    return by[name].get("gemm_gflops", first_rate / 1e9) * 1e9

  rows, targets, checks = [], [], []

  def target(name, value, op, goal, note=""):
    ok = value is not None and math.isfinite(value) and (value >= goal if op == ">=" else value <= goal)
    targets.append(dict(target=name, value=value, op=op, goal=goal, met=bool(ok), note=note))

  for res in results:
    wl, p, impls = res["workload"], res["params"], res["impls"]
    ref = next(iter(impls))
    fl = workloads.flops(wl, p)
    for name, v in impls.items():
      row = dict(case=res["name"], impl=name, time_s=v["time_s"], peak_mib=v["peak_mib"],
                 work_mib=v["work_mib"], runs=res["runs"])
      if name != ref and wl not in ("psi",):
        row["speedup_vs_" + ref] = v["time_s"] / impls[ref]["time_s"]
      if fl is not None:
        row["gemm_frac"] = fl / v["time_s"] / rate(res["name"])
        row["gflops"] = fl / v["time_s"] / 1e9
        row["gemm_gflops"] = rate(res["name"]) / 1e9
      rows.append(row)

  if "ridge" in by:
    im = by["ridge"]["impls"]
    mse = {k: v["out"]["test_mse"] for k, v in im.items()}
    target("ridge: numpy_scipy / rfjax time", im["numpy_scipy"]["time_s"] / im["rfjax"]["time_s"],
           ">=", 1.3)
    target("ridge: rfjax fraction of GEMM rate",
           workloads.flops("ridge", by["ridge"]["params"]) / im["rfjax"]["time_s"] / rate("ridge"),
           ">=", 0.7)
    target("ridge: rfjax / numpy_scipy work memory",
           im["rfjax"]["work_mib"] / im["numpy_scipy"]["work_mib"], "<=", 0.25)
    for k, v in mse.items():
      checks.append(dict(check=f"ridge test MSE {k} vs rfjax", value=_rel(v, mse["rfjax"]),
                         tol=1e-3, ok=_rel(v, mse["rfjax"]) <= 1e-3 and math.isfinite(v)))
  for b in (1, 64):
    name = f"sgd_b{b}"
    if name not in by:
      continue
    im = by[name]["impls"]
    best_torch = min(im["torch"]["time_s"], im["torch_1thread"]["time_s"])
    target(f"sgd batch {b}: faster torch / rfjax time", best_torch / im["rfjax"]["time_s"], ">=",
           5.0 if b == 1 else 2.0)
    if b == 64:
      target("sgd batch 64: rfjax fraction of GEMM rate",
             workloads.flops("sgd", by[name]["params"]) / im["rfjax"]["time_s"] / rate(name),
             ">=", 0.5)
    h = {k: v["out"]["test_hinge"] for k, v in im.items()}
    for k, v in h.items():
      d = abs(v - h["rfjax"])
      checks.append(dict(check=f"{name} test hinge {k} vs rfjax", value=d, tol=1e-3,
                         ok=d <= 1e-3 and math.isfinite(v)))
  if "sweep" in by:
    im = by["sweep"]["impls"]
    target("sweep: numpy_loop / rfjax time", im["numpy_loop"]["time_s"] / im["rfjax"]["time_s"],
           ">=", 1.7)
    target("sweep: rfjax / numpy_loop work memory",
           im["rfjax"]["work_mib"] / im["numpy_loop"]["work_mib"], "<=", 2.0)
    a, b_ = im["rfjax"]["out"], im["numpy_loop"]["out"]
    se = math.hypot(a["sd_test_mse"], b_["sd_test_mse"]) / math.sqrt(by["sweep"]["params"]["seeds"])
    diff = abs(a["mean_test_mse"] - b_["mean_test_mse"])
    tol = 4 * se + 0.02 * a["mean_test_mse"]
    checks.append(dict(check="sweep mean test MSE numpy_loop vs rfjax (4 SE)", value=diff, tol=tol,
                       ok=diff <= tol))
  if "psi" in by:
    res = by["psi"]
    im = res["impls"]
    ex, mc = im["rfjax_exact"], im["rfjax_mc"]
    c_ex = [float(v) for v in ex["out"]["corr"]]
    c_mc, sd, n = mc["out"]["corr"], mc["out"]["sd"], mc["out"]["n"]
    pairs = ex["out"]["pairs"]
    per_pair = ex["time_s"] / pairs
    eps = 0.1 * statistics.median(abs(c) for c in c_ex)   # one significant digit
    sd_med = statistics.median(sd)
    n_needed = (sd_med / eps) ** 2
    mc_per_pair_sample = mc["time_s"] / (pairs * n)
    z = [abs(a - b) / (s / math.sqrt(n)) for a, b, s in zip(c_mc, c_ex, sd) if s > 0]
    res["psi"] = dict(exact_s_per_pair=per_pair, accuracy=eps, mc_sd=sd_med,
                      mc_samples_needed=n_needed, mc_s_per_pair_at_accuracy=n_needed * mc_per_pair_sample,
                      median_abs_corr=10 * eps)
    target("psi exact: seconds per (feature, w*) pair", per_pair, "<=", 1e-3)
    frac = sum(v <= 5 for v in z) / max(len(z), 1)
    checks.append(dict(check="psi Monte Carlo within 5 SE of exact (fraction of pairs)",
                       value=frac, tol=0.99, ok=frac >= 0.99))
  if "boxpath" in by:
    res = by["boxpath"]
    im, bp = res["impls"], res["params"]
    a, b_ = im["rfjax"], im["quadprog"]
    idx = b_["out"]["idx"]
    t_rf = min(a["times_s"])                         # judged on the minimum over repeats
    t_peer_per_value = min(b_["times_s"]) / len(idx)
    note = (f"quadprog on {len(idx)} of {bp['values']} values of B (indices {idx}), per value; "
            f"max gap / E y²: rfjax {a['out']['max_gap']:.1e}, quadprog {b_['out']['max_gap']:.1e}")
    target("boxpath: quadprog / rfjax time per value of B (min over runs)",
           t_peer_per_value / (t_rf / bp["values"]), ">=", 3.0, note)
    if bp["r"] >= 4096:
      target(f"boxpath: rfjax path of {bp['values']} values at r = {bp['r']}, s (min over runs)",
             t_rf, "<=", 10.0)
    checks.append(dict(check="boxpath rfjax: every point KKT", value=None, tol=None,
                       ok=bool(a["out"]["kkt"])))
    for k, i in enumerate(idx):
      e_rf, e_peer = a["out"]["errors"][i], b_["out"]["errors"][k]
      tol = max(a["out"]["gaps"][i], b_["out"]["gaps"][k]) + 1e-9
      d = abs(e_rf - e_peer)
      checks.append(dict(check=f"boxpath error at B[{i}] quadprog vs rfjax (within the gaps, / E y²)",
                         value=d, tol=tol, ok=d <= tol * max(1.0, abs(e_rf)) or d <= tol))
  sc = [r for r in results if r["workload"] == "scaling"]
  if len(sc) >= 2:
    lo, hi = sc[0], sc[-1]
    t_ratio = (hi["impls"]["rfjax"]["time_s"] / lo["impls"]["rfjax"]["time_s"]) / (
        hi["params"]["n"] / lo["params"]["n"])
    rates = ", ".join(f"{workloads.flops('scaling', r['params']) / r['impls']['rfjax']['time_s'] / 1e9:.0f}"
                      for r in sc)
    target("scaling: rfjax time per sample, largest n / smallest n", t_ratio, "<=", 1.25,
           f"1 = linear in n; rfjax GFLOP/s by n: {rates}")
    m_lo, m_hi = lo["impls"]["rfjax"]["work_mib"], hi["impls"]["rfjax"]["work_mib"]
    target("scaling: rfjax work memory, largest n / smallest n", m_hi / max(m_lo, 1e-9), "<=",
           1.25, "1 = flat in n")
    for r in sc:
      im = r["impls"]
      if "numpy_scipy" in im:
        a, b_ = im["rfjax"]["out"]["test_mse"], im["numpy_scipy"]["out"]["test_mse"]
        checks.append(dict(check=f"{r['name']} test MSE numpy_scipy vs rfjax (other draws)",
                           value=_rel(b_, a), tol=0.2, ok=_rel(b_, a) <= 0.2))
  for r in results:                                   # every number finite
    for k, v in r["impls"].items():
      vals = [v["time_s"], v["peak_mib"]] + [x for x in v["out"].values()
                                             if isinstance(x, (int, float))
                                             and not isinstance(x, bool)]
      checks.append(dict(check=f"{r['name']} {k} finite", value=None, tol=None,
                         ok=all(math.isfinite(x) for x in vals)))
  return rows, targets, checks


def over_repeats(per_repeat: list[list[dict]]) -> list[dict]:
  """Every target's value over the repeats: min / median / max and `met` on the worst.

  per_repeat[k] is the target list of repeat k (as `summarise` returns it). A target missing
  from a repeat, or non-finite there, counts as not met.
  """
  names = []
  for ts in per_repeat:
    names += [t["target"] for t in ts if t["target"] not in names]
  out = []
  for name in names:
    hits = [next((t for t in ts if t["target"] == name), None) for ts in per_repeat]
    first = next(t for t in hits if t is not None)
    vals = [t["value"] if t is not None and t["value"] is not None else math.nan for t in hits]
    finite = [v for v in vals if math.isfinite(v)]
    complete = len(finite) == len(vals)
    worst = (min(finite) if first["op"] == ">=" else max(finite)) if finite else math.nan
    met = complete and (worst >= first["goal"] if first["op"] == ">=" else worst <= first["goal"])
    out.append(dict(target=name, op=first["op"], goal=first["goal"], values=vals,
                    min=min(finite) if finite else None,
                    median=statistics.median(finite) if finite else None,
                    max=max(finite) if finite else None, worst=worst if finite else None,
                    met=bool(met), repeats=len(vals)))
  return out


def _fmt(v, spec):
  return "" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
  """The rows as a markdown table."""
  head = ("| case | impl | time (s) | peak MiB | work MiB | peer / rfjax | GFLOP/s | GEMM GFLOP/s "
          "| GEMM frac | runs |")
  lines = [head, "|" + "---|" * 10]
  for r in rows:
    ratio = next((v for k, v in r.items() if k.startswith("speedup_vs_")), None)
    lines.append(f"| {r['case']} | {r['impl']} | {r['time_s']:.4g} | {r['peak_mib']:.0f} | "
                 f"{_fmt(r['work_mib'], '.0f')} | {_fmt(ratio, '.2f')} | "
                 f"{_fmt(r.get('gflops'), '.1f')} | {_fmt(r.get('gemm_gflops'), '.1f')} | "
                 f"{_fmt(r.get('gemm_frac'), '.2f')} | {r['runs']} |")
  return "\n".join(lines)


def machine() -> dict:
  """What the numbers were measured on."""
  cpu = platform.processor()
  try:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
      cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
  except OSError:
    pass
  versions = {}
  for mod in ("numpy", "scipy", "jax", "jaxlib", "sklearn", "torch"):
    try:
      versions[mod] = __import__(mod).__version__
    except ImportError:
      versions[mod] = None
  return dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(),
              platform=platform.platform(), **versions)


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  ap.add_argument("--quick", action="store_true", help="small sizes: the whole suite in ~1 min")
  ap.add_argument("--only", default="", help="comma-separated workloads or case names")
  ap.add_argument("--runs", type=int, default=5, help="timed rounds per case (median)")
  ap.add_argument("--repeat", type=int, default=1,
                  help="run the whole rotation this many times (fresh workers each time) and "
                       "judge every target on its worst repeat")
  ap.add_argument("--n", type=int, default=None, help="ridge: number of samples")
  ap.add_argument("--r", type=int, default=None, help="ridge: number of features")
  ap.add_argument("--seed-batch", type=int, default=4,
                  help="sweep: seeds vmapped at once by rfjax (sweep.over_seeds batch_size)")
  ap.add_argument("--scaling-n", default="", help="scaling: comma-separated n (e.g. 1e5,1e6)")
  ap.add_argument("--scaling-r", type=int, default=None, help="scaling: number of features")
  ap.add_argument("--peer-mem-gib", type=float, default=4.0,
                  help="scaling: run numpy only where Φ and its temporary fit in this")
  ap.add_argument("--single-run-flops", type=float, default=2e12,
                  help="scaling: cases with n r² above this get one timed run, no warm-up")
  ap.add_argument("--boxpath-peer-values", default="0,19",
                  help="boxpath: indices of the 20 values of B that quadprog solves (full size)")
  ap.add_argument("--out", default=str(HERE / "results" / "latest.json"))
  args = ap.parse_args(argv)
  if args.worker:
    worker()
    return 0
  if args.runs < 1:
    ap.error("--runs must be >= 1")
  if args.repeat < 1:
    ap.error("--repeat must be >= 1")
  log = lambda msg: print(msg, file=sys.stderr, flush=True)
  t0 = time.perf_counter()
  repeats = []
  for k in range(args.repeat):
    load_before = os.getloadavg()
    t_rep = time.perf_counter()
    results = []
    for case in make_cases(args):
      log(f"[repeat {k + 1}/{args.repeat}] {case['name']} {case['params']}")
      results.append(run_case(case, log))
    rows, targets, checks = summarise(results)
    repeats.append(dict(rows=rows, targets=targets, checks=checks, cases=results,
                        wall_s=time.perf_counter() - t_rep,
                        load_before=list(load_before), load_after=list(os.getloadavg())))
  last = repeats[-1]
  rows, targets, checks = last["rows"], last["targets"], [c for r in repeats for c in r["checks"]]
  ranges = over_repeats([r["targets"] for r in repeats])
  report = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                command=" ".join(["python", "benchmarks/run.py"] + (argv or sys.argv[1:])),
                quick=args.quick, machine=machine(), wall_s=time.perf_counter() - t0,
                gemm_gflops=rows[0]["gflops"], rows=rows, targets=targets, checks=checks,
                cases=last["cases"], repeat=args.repeat, target_ranges=ranges,
                repeats=[{k: v for k, v in r.items() if k != "checks"} for r in repeats[:-1]]
                + [{k: v for k, v in last.items() if k not in ("checks", "cases", "rows")}])
  out = Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(report, indent=1))
  print(table(rows) if args.repeat == 1 else
        f"(table of the last of {args.repeat} repeats)\n" + table(rows))
  print()
  psi = next((r.get("psi") for r in last["cases"] if r.get("psi")), None)
  if psi:
    print(f"psi: exact {psi['exact_s_per_pair'] * 1e6:.1f} us/pair; Monte Carlo needs "
          f"{psi['mc_samples_needed']:.2e} samples for accuracy {psi['accuracy']:.2e} "
          f"(~{psi['mc_s_per_pair_at_accuracy']:.2e} s/pair)")
  if args.repeat == 1:
    for t in targets:
      print(f"{'MET ' if t['met'] else 'MISS'} {t['target']}: {t['value']:.3g} (target {t['op']} "
            f"{t['goal']}){'; ' + t['note'] if t['note'] else ''}")
  else:
    loads = "; ".join(f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f}" for r in repeats)
    print(f"over {args.repeat} repeats (1-min load average before → after each: {loads}); "
          "a target is met only if its worst repeat meets it")
    for t in ranges:
      lo, md, hi = (_fmt(t[k], ".3g") or "–" for k in ("min", "median", "max"))
      print(f"{'MET ' if t['met'] else 'MISS'} {t['target']}: min {lo} / median {md} / max {hi} "
            f"(target {t['op']} {t['goal']}, judged on the {'min' if t['op'] == '>=' else 'max'})")
  bad = [c for c in checks if not c["ok"]]
  for c in bad:
    print(f"CHECK FAILED {c['check']}: {c['value']} (tol {c['tol']})")
  print(f"\nGEMM {report['gemm_gflops']:.1f} GFLOP/s; wall {report['wall_s']:.0f} s; JSON: {out}")
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
