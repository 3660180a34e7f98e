"""A new feature map in rfjax, from definition to figure, through the public API.

Defines leaky ReLU σ(z) = (1 − α) relu(z) + α z as a new activation whose record gives its
exact Gaussian moments in closed form (every moment is linear in σ, so each is the same mix of
the built-in relu and linear records' moments), and a feature map over it: ridge features
σ(<w_i, x> + b_i) with w_i uniform on the unit sphere and b_i ~ N(0, 1). Then, with rfjax.api:

1. its correlation with ψ_{w*} against d (docs/theory.md, 'ψ and Prop. 4.4'): exact mode (the
   mean over w* on the sphere of radius d as a ρ-integral, 'Sampled w* underestimate the mean'),
   and Monte Carlo with standard errors at small d as an independent check of the closed forms;
2. its certified best-fit error to ψ_{w*} against r and r·max|u_i| (docs/theory.md, 'Certified
   box fit' and 'Limits of random features');
3. rfjax.testing.check_feature_map on it (the conformance checks);

and writes new_feature_map.png (the two curves) and new_feature_map.json (their numbers) to
--out (default runs/examples, which git ignores):

  python examples/new_feature_map.py [--out DIR] [--ds 2,3,4,6,10,15,20] [--rs 16,64,256]
"""
import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)   # exact mode and correlations are float64

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")   # a script writes files; a notebook keeps its own backend
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rfjax import activations, api, features, gaussian, testing  # noqa: E402

# ---- The new activation and feature map (the whole definition) ----------------------------
PARTS = {"relu": 0.8, "linear": 0.2}   # σ(z) = 0.8 relu(z) + 0.2 z, leaky ReLU with α = 0.2


def mix(moment):   # a Gaussian moment of σ: the same mix of the parts' moments
  return lambda *args: sum(c * moment(name, *args) for name, c in PARTS.items())


def cross(sx, b, sy, c, rho):   # E σ(sx U + b) σ(sy V + c): relu-relu closed form, rest Stein
  return sum(ci * cj * gaussian.act_cross(i, sx, b, j, sy, c, rho)
             for i, ci in PARTS.items() for j, cj in PARTS.items())


activations.register("leaky_relu", activations.Activation(
    "leaky_relu", lambda z: jnp.where(z >= 0, z, 0.2 * z), lipschitz=1.0, sigma0=0.0,
    taylor=None, gaussian=activations.GaussianRules(
        kinks=(0.0,), mean=mix(gaussian.act_mean), second=lambda s, b: cross(s, b, s, b, 1.0),
        stein=mix(gaussian.act_stein), cross=cross,
        psi_corr=mix(lambda name, *a: activations.get(name).gaussian.psi_corr(*a)))))


def init(key, d, r):   # w_i uniform on the unit sphere, b_i ~ N(0, 1)
  d, r = features.check_dims(d, r)
  g = jax.random.normal(key, (d + 1, r))
  return {"w_dr": g[:d] / jnp.linalg.norm(g[:d], axis=0, keepdims=True), "b_r": g[d]}


features.register("leaky_sphere", features.FeatureMap(
    init, lambda p, x_nd: activations.get("leaky_relu").fn(x_nd @ p["w_dr"] + p["b_r"]),
    ridge=lambda p: features.RidgeForm(p["w_dr"], p["b_r"], "leaky_relu")))
# ---------------------------------------------------------------------------------------------


def psi_curve(name, ds, mc_ds, *, num_features, mc_n, seed):
  """ψ-correlation rows against d: exact at every d, Monte Carlo (with s.e.) at mc_ds."""
  rows = []
  for d in ds:
    key = jax.random.fold_in(jax.random.key(seed), d)
    ex = api.psi_correlation(name, d, key=key, num_features=num_features)
    form = features.get(name).ridge(features.get(name).init(jax.random.fold_in(key, 0), d,
                                                             num_features))
    row = dict(d=d, mode=ex.mode, method=ex.method, exact=ex.mean_abs_corr,
               exact_per_feature=ex.per_feature.tolist(),
               s=np.linalg.norm(np.asarray(form.w_dr), axis=0).tolist(),
               b=np.asarray(form.b_r).tolist())
    if d in mc_ds:
      mc = api.psi_correlation(name, d, key=key, num_features=num_features, mode="sample",
                               n=mc_n)
      row.update(monte_carlo=mc.mean_abs_corr, mc_stderr=mc.stderr, mc_n=mc_n)
    rows.append(row)
    print(f"d = {d:2d}: exact {ex.mean_abs_corr:.3e} ({ex.method})"
          + (f", Monte Carlo {row['monte_carlo']:.3e} ± {row['mc_stderr']:.1e}"
             if d in mc_ds else ""), flush=True)
  return rows


def plot(psi_rows, fit_rows, fit_d, path):
  fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
  ds = [r["d"] for r in psi_rows]
  ax0.semilogy(ds, [r["exact"] for r in psi_rows], "o-", label="exact (closed form)")
  mc = [r for r in psi_rows if "monte_carlo" in r]
  if mc:
    line, = ax0.semilogy([r["d"] for r in mc], [r["monte_carlo"] for r in mc], "s", mfc="none",
                         label=f"Monte Carlo (n = {mc[0]['mc_n']})")
    ax0.semilogy([r["d"] for r in mc], [3 * r["mc_stderr"] for r in mc], "--",
                 color=line.get_color(), label="3 Monte Carlo s.e. (its floor)")
  ax0.set(xlabel="d", ylabel="E|<f, ψ_w*>| / ‖f‖",
          title="leaky_sphere: correlation with ψ_w*")
  ax0.legend()
  for r in sorted({row["r"] for row in fit_rows}):
    rows = [row for row in fit_rows if row["r"] == r]
    line, = ax1.semilogx([row["rB"] for row in rows], [row["relative_error"] for row in rows],
                         "o-", label=f"r = {r}")
    ax1.fill_between([row["rB"] for row in rows], [row["relative_lower"] for row in rows],
                     [row["relative_error"] for row in rows], color=line.get_color(), alpha=0.3)
  ax1.set(xlabel="r · max|u_i|", ylabel="min E(f_u − ψ)² / E ψ² (certified)",
          title=f"best fit to ψ_w* (d = {fit_d}); band: certified gap")
  ax1.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv=None):
  ints = lambda s: tuple(int(v) for v in s.split(","))          # noqa: E731
  floats = lambda s: tuple(float(v) for v in s.split(","))      # noqa: E731
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=os.path.join("runs", "examples"),
                      help="output directory (created)")
  parser.add_argument("--ds", type=ints, default=(2, 3, 4, 6, 10, 15, 20))
  parser.add_argument("--mc_ds", type=ints, default=(2, 3),
                      help="d values also estimated by Monte Carlo")
  parser.add_argument("--num_features", type=int, default=4)
  parser.add_argument("--mc_n", type=int, default=2**16)
  parser.add_argument("--fit_d", type=int, default=4)
  parser.add_argument("--rs", type=ints, default=(16, 64, 256))
  parser.add_argument("--rBs", type=floats, default=(1, 10, 100, 1e3, 1e4, 1e5))
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  start = time.time()
  os.makedirs(args.out, exist_ok=True)

  testing.check_feature_map("leaky_sphere")
  print(f"check_feature_map('leaky_sphere'): all checks pass [{time.time() - start:.1f} s]",
        flush=True)
  psi_rows = psi_curve("leaky_sphere", args.ds, args.mc_ds, num_features=args.num_features,
                       mc_n=args.mc_n, seed=args.seed)
  print(f"ψ-correlation curve done [{time.time() - start:.1f} s]", flush=True)
  fit_rows = api.fit_curve("leaky_sphere", args.fit_d, args.rs, args.rBs,
                           key=jax.random.key(args.seed + 1))
  for row in fit_rows:
    print(f"r = {row['r']:4d}, r·B = {row['rB']:8.0f}: relative error {row['relative_error']:.4f}"
          f" (certified ≥ {row['relative_lower']:.4f})", flush=True)
  print(f"fit curve done [{time.time() - start:.1f} s]", flush=True)
  png = os.path.join(args.out, "new_feature_map.png")
  plot(psi_rows, fit_rows, args.fit_d, png)
  with open(os.path.join(args.out, "new_feature_map.json"), "w", encoding="utf-8") as f:
    json.dump(dict(psi=psi_rows, fit=fit_rows, fit_d=args.fit_d), f, indent=1)
  print(f"wrote {png} in {time.time() - start:.1f} s", flush=True)


if __name__ == "__main__":
  main()
