"""Conformance checks for feature maps, in the style of scikit-learn's `check_estimator`.

  from rfjax import testing
  testing.check_feature_map("square_sphere")        # or a FeatureMap record

runs every check on the map and raises FeatureMapError (an AssertionError) whose message names
the map, the check and the problem. The checks (CHECKS, in order):

- shapes: init(key, d, r) then apply(params, x[n, d]) gives a finite [n, r] array; the kernel,
  if any, gives [n, m];
- dtype: float64 inputs and params give float64 features (exact mode and correlations are
  float64 computations);
- determinism: the same key gives the same params and features, a different key different ones;
- jit: jit(init) (d, r static) and jit(apply) agree with the plain calls;
- vmap: init and apply vmapped over a batch of keys (seeds) agree with one call per key;
- bad_dims: init refuses d or r that is not a positive integer (ValueError);
- kernel: the closed-form kernel, if any, is within k Monte Carlo standard errors of the mean
  of f(x) f(y) over many own features, and is symmetric positive semi-definite;
- ridge: the ridge form, if any, reproduces apply with its activation record's fn, and that
  record has exact mode.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import features
from rfjax import gaussian


class FeatureMapError(AssertionError):
  """A feature map failed a conformance check; the message names the check and the problem."""


def _fail(label: str, check: str, problem: str) -> None:
  raise FeatureMapError(f"check_feature_map({label}): {check}: {problem}")


def _x(n: int, d: int, seed: int) -> jax.Array:
  return jax.random.normal(jax.random.key(seed), (n, d), jnp.float64)


def _check_shapes(fm, label, d, r, **_):
  x = _x(4, d, 1)
  phi = jnp.asarray(fm.apply(fm.init(jax.random.key(0), d, r), x))
  if phi.shape != (4, r):
    _fail(label, "shapes", f"apply(params, x[4, {d}]) returned shape {tuple(phi.shape)}; "
          f"expected (n, r) = (4, {r})")
  if not bool(jnp.all(jnp.isfinite(phi))):
    _fail(label, "shapes", "apply returned non-finite values on Gaussian inputs")
  if fm.kernel is not None:
    k = jnp.asarray(fm.kernel(x, _x(5, d, 2)))
    if k.shape != (4, 5):
      _fail(label, "shapes", f"kernel(x[4, {d}], y[5, {d}]) returned shape {tuple(k.shape)}; "
            "expected (4, 5)")


def _check_dtype(fm, label, d, r, **_):
  params = fm.init(jax.random.key(0), d, r)
  leaves = [a for a in jax.tree.leaves(params) if jnp.issubdtype(jnp.asarray(a).dtype,
                                                                 jnp.floating)]
  bad = sorted({str(jnp.asarray(a).dtype) for a in leaves} - {"float64"})
  if bad:
    _fail(label, "dtype", f"init returned {', '.join(bad)} params with x64 on; sample in "
          "JAX's default float dtype (or take a dtype argument)")
  phi = jnp.asarray(fm.apply(params, _x(3, d, 1)))
  if phi.dtype != jnp.float64:
    _fail(label, "dtype", f"apply returned {phi.dtype} for float64 inputs; expected float64")


def _check_determinism(fm, label, d, r, **_):
  x = _x(4, d, 1)
  p0, p0b = fm.init(jax.random.key(0), d, r), fm.init(jax.random.key(0), d, r)
  same = jax.tree.map(lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))), p0, p0b)
  if not all(jax.tree.leaves(same)):
    _fail(label, "determinism", "init called twice with the same key gave different params "
          "(randomness must come from the key argument only)")
  if not np.array_equal(np.asarray(fm.apply(p0, x)), np.asarray(fm.apply(p0, x))):
    _fail(label, "determinism", "apply called twice on the same params and x gave different "
          "features")
  p1 = fm.init(jax.random.key(1), d, r)
  if np.array_equal(np.asarray(fm.apply(p0, x)), np.asarray(fm.apply(p1, x))):
    _fail(label, "determinism", "different keys gave the same features (the key is ignored)")


def _close(a, b) -> bool:
  return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14))


def _check_jit(fm, label, d, r, **_):
  x = _x(4, d, 1)
  params = fm.init(jax.random.key(0), d, r)
  try:
    params_jit = jax.jit(fm.init, static_argnums=(1, 2))(jax.random.key(0), d, r)
    phi_jit = jax.jit(fm.apply)(params, x)
  except Exception as e:  # noqa: BLE001 - any failure to trace is the finding.
    _fail(label, "jit", f"does not trace under jax.jit: {type(e).__name__}: "
          f"{' '.join(str(e).split())[:200]}")
  if not all(jax.tree.leaves(jax.tree.map(_close, params_jit, params))):
    _fail(label, "jit", "jit(init) and init disagree")
  if not _close(phi_jit, fm.apply(params, x)):
    _fail(label, "jit", "jit(apply) and apply disagree")


def _check_vmap(fm, label, d, r, **_):
  x = _x(4, d, 1)
  keys = jax.random.split(jax.random.key(5), 2)
  try:
    params_s = jax.vmap(lambda k: fm.init(k, d, r))(keys)
    phi_snr = jax.vmap(fm.apply, in_axes=(0, None))(params_s, x)
  except Exception as e:  # noqa: BLE001
    _fail(label, "vmap", f"init/apply do not vmap over seeds: {type(e).__name__}: "
          f"{' '.join(str(e).split())[:200]}")
  for s in range(2):
    if not _close(phi_snr[s], fm.apply(fm.init(keys[s], d, r), x)):
      _fail(label, "vmap", f"vmapped features of seed {s} differ from one call with its key")


def _check_bad_dims(fm, label, d, r, **_):
  for bad in (0, -1, 2.5):
    for which, args in (("d", (bad, r)), ("r", (d, bad))):
      try:
        fm.init(jax.random.key(0), *args)
      except ValueError:
        continue
      except Exception as e:  # noqa: BLE001
        _fail(label, "bad_dims", f"init with {which} = {bad!r} raised {type(e).__name__}, "
              "not ValueError (use features.check_dims(d, r))")
      _fail(label, "bad_dims", f"init accepted {which} = {bad!r} (use features.check_dims)")


def _check_kernel(fm, label, d, r, kernel_features, k, **_):
  if fm.kernel is None:
    return
  x = _x(4, d, 3)
  mc_nn, se_nn = features.kernel_monte_carlo(fm, x, jax.random.key(11), kernel_features)
  k_nn = np.asarray(fm.kernel(x, x))
  z_nn = np.abs(mc_nn - k_nn) / (se_nn + 1e-12)
  if z_nn.max() > k:
    i, j = np.unravel_index(np.argmax(z_nn), z_nn.shape)
    _fail(label, "kernel", f"kernel(x, x)[{i}, {j}] = {k_nn[i, j]:.6g} is {z_nn.max():.1f} "
          f"standard errors from the Monte Carlo mean {mc_nn[i, j]:.6g} over "
          f"{kernel_features} features (allowed: {k:g}); ratio {k_nn[i, j] / mc_nn[i, j]:.3g}")
  if not np.allclose(k_nn, k_nn.T, rtol=1e-12, atol=1e-14):
    _fail(label, "kernel", "kernel(x, x) is not symmetric")
  if np.linalg.eigvalsh(k_nn).min() < -1e-12 * np.abs(k_nn).max():
    _fail(label, "kernel", "kernel(x, x) is not positive semi-definite")


def _check_ridge(fm, label, d, r, **_):
  if fm.ridge is None:
    return
  x = _x(4, d, 1)
  params = fm.init(jax.random.key(0), d, r)
  form = fm.ridge(params)
  if not isinstance(form, features.RidgeForm):
    _fail(label, "ridge", f"ridge(params) returned {type(form).__name__}, not a RidgeForm")
  if tuple(form.w_dr.shape) != (d, r) or tuple(form.b_r.shape) != (r,):
    _fail(label, "ridge", f"RidgeForm shapes {tuple(form.w_dr.shape)}, {tuple(form.b_r.shape)}; "
          f"expected ({d}, {r}), ({r},)")
  try:
    act = gaussian.activation_record(form.activation)
  except (KeyError, ValueError) as e:
    _fail(label, "ridge", f"its activation has no exact mode: {' '.join(str(e).split())}")
  want = act.fn(jnp.matmul(x, form.w_dr, precision=jax.lax.Precision.HIGHEST) + form.b_r[None])
  if not _close(fm.apply(params, x), want):
    _fail(label, "ridge", f"apply differs from {act.name}(<w_i, x> + b_i) of its ridge form")


CHECKS = dict(shapes=_check_shapes, dtype=_check_dtype, determinism=_check_determinism,
              jit=_check_jit, vmap=_check_vmap, bad_dims=_check_bad_dims, kernel=_check_kernel,
              ridge=_check_ridge)


def check_feature_map(fm: features.FeatureMap | str, *, d: int = 3, r: int = 8,
                      kernel_features: int = 20_000, k: float = 5.0,
                      checks: Sequence[str] | None = None) -> None:
  """Runs the conformance checks (all of CHECKS, or the named ones) on a feature map.

  fm: a FeatureMap or a registered name; d, r: the sizes the checks use; kernel_features:
  features in the Monte Carlo mean the kernel is held against; k: allowed standard errors.
  Raises FeatureMapError naming the check and the problem; returns None when all pass.
  """
  gaussian.require_x64("testing.check_feature_map")
  label = repr(fm) if isinstance(fm, str) else "FeatureMap"
  if isinstance(fm, str):
    fm = features.get(fm)
  if not isinstance(fm, features.FeatureMap):
    _fail(label, "record", f"expected a FeatureMap, got {type(fm).__name__}")
  names = list(CHECKS) if checks is None else list(checks)
  unknown = [c for c in names if c not in CHECKS]
  if unknown:
    raise ValueError(f"unknown checks {unknown}; known: {list(CHECKS)}")
  for name in names:
    CHECKS[name](fm, label, d=d, r=r, kernel_features=kernel_features, k=k)
