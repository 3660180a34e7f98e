"""Fits of output weights u from population moments: ridge, least squares, box-bounded.

Every solver takes `Moments` (G = E[f f^T], b = E[f y], E f, E y, E y^2), from either
evaluation mode: `sample_moments` streams Monte Carlo inputs through `lax.scan` (memory
O(r^2 + chunk r), never n r); `exact_moments` gets them from the closed forms of
`gaussian.py` / `targets.py` for ridge features. All fits include a free output bias u0
(docs/theory.md, 'Certified box fit'): the model is sum_i u_i f_i(x) + u0, and the box
|u_i| <= B never applies to u0.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, NamedTuple

import numpy as np

import jax
import jax.numpy as jnp
import optax

from rfjax import distributions
from rfjax import linalg

_HI = jax.lax.Precision.HIGHEST

Sampler = distributions.Sampler  # (key, n, d, dtype=...) -> x_nd


class Moments(NamedTuple):
  """Population second moments of features f_1..f_r and target y (sample or exact mode)."""
  G_rr: jax.Array    # E[f f^T]
  b_r: jax.Array     # E[f y]
  mean_r: jax.Array  # E[f]
  y_mean: jax.Array  # E[y]   (scalar)
  yy: jax.Array      # E[y^2] (scalar)


class BoxFit(NamedTuple):
  """Result of `box_fit` over a grid of B (index B)."""
  errors_B: jax.Array  # E(sum u_i f_i + u0 - y)^2 at the fitted (u, u0), [nB]
  u_Br: jax.Array      # fitted u, |u_i| <= B, [nB, r]
  u0_B: jax.Array      # fitted free bias, [nB]
  kkt_B: jax.Array     # final projected-gradient residual L |v - P(v - grad/L)|_2, [nB]
  gap_B: jax.Array     # Frank-Wolfe gap: errors_B - gap_B <= min error at B <= errors_B, [nB]


# --------------------------------------------------------------------------- moments


# Gram accumulation: only the block upper triangle of phi^T phi is formed, one row panel per
# block of features (panel i: rows of block i, columns from block i on), so a chunk costs
# about (k+1)/(2k) of a full product. XLA has no symmetric rank-k update; this recovers most
# of one with plain dots. Panels of about _PANEL features keep each dot large enough to run
# near the machine's GEMM rate.
_PANEL = 384


def gram_blocks(r: int, panel: int | None = None) -> tuple[int, ...]:
  """Start offsets of the feature blocks the streamed Gram is split into (the last ends at r)."""
  k = max(1, -(-r // (panel or _PANEL)))
  size = -(-r // k)
  return tuple(range(0, r, size))


def _gram_zero(r: int, dtype: Any, starts: tuple[int, ...]) -> tuple[jax.Array, ...]:
  """Zero row panels: panel i is [block_i, r - start_i]."""
  ends = starts[1:] + (r,)
  return tuple(jnp.zeros((e - s, r - s), dtype) for s, e in zip(starts, ends))


def _gram_add(panels: tuple[jax.Array, ...], phi_nr: jax.Array,
              starts: tuple[int, ...]) -> tuple[jax.Array, ...]:
  """panels += the block upper triangle of phi_nr^T phi_nr."""
  r = phi_nr.shape[1]
  ends = starts[1:] + (r,)
  return tuple(
      p + jax.lax.dot_general(phi_nr[:, s:e], phi_nr[:, s:], (((0,), (0,)), ((), ())),
                              precision=_HI)
      for p, s, e in zip(panels, starts, ends))


def _gram_full(panels: tuple[jax.Array, ...], starts: tuple[int, ...]) -> jax.Array:
  """The symmetric [r, r] Gram from its block upper triangle."""
  r = panels[0].shape[1]
  upper = jnp.concatenate(
      [jnp.pad(p, ((0, 0), (s, 0))) for p, s in zip(panels, starts)], axis=0)
  block = jnp.searchsorted(jnp.asarray(starts), jnp.arange(r), side="right")
  in_upper = block[None, :] >= block[:, None]
  G = jnp.where(in_upper, upper, upper.T)
  return 0.5 * (G + G.T)   # diagonal blocks are full products: symmetric up to rounding


# Gram accumulation by BLAS on CPU: per chunk, one symmetric rank-k update C += phi^T phi
# (ssyrk / dsyrk of the BLAS scipy ships, nr^2 FLOPs at close to the GEMM rate) reached from
# inside the jitted scan by a host callback on the [r, r] accumulator C; only its upper
# triangle is updated and read. It costs two copies of C per chunk (into a writable host
# array and back), small against the chunk * r^2 multiply-adds of the update for chunks of
# a few thousand rows. The callback lowers only for CPU (`lax.platform_dependent`); on
# other platforms the same accumulator is updated by an XLA dot.
GRAM_METHODS = ("auto", "syrk", "xla")
GRAM_ENV = "RFJAX_GRAM"


def gram_method(method: str | None = None, dtype: Any = jnp.float32) -> str:
  """The Gram accumulation a moment stream uses: "syrk" (BLAS on the host) or "xla" (dots).

  `method` None reads the environment variable RFJAX_GRAM (default "auto"), at trace time.
  "auto" is "xla" for now: on the 2-core benchmark machine, shared with other jobs, the
  syrk path was not faster end to end (README, "Why the RF fit stops at 60-70% of GEMM"):
  OpenBLAS's worker thread spins between the per-chunk calls and takes CPU from XLA's
  threads. "syrk" (on CPU; other platforms still run XLA dots, see `_tri_add`) is there to
  be measured and used where it wins.
  """
  method = method or os.environ.get(GRAM_ENV) or "auto"
  if method not in GRAM_METHODS:
    raise ValueError(f"gram must be one of {GRAM_METHODS}, got {method!r}")
  if method == "auto":
    method = "xla"
  if method == "syrk" and jnp.dtype(dtype) not in (jnp.float32, jnp.float64):
    raise ValueError(f"gram='syrk' needs float32 or float64 sums, got {jnp.dtype(dtype)}")
  return method


def _syrk_host(c_rr: Any, phi_nr: Any) -> np.ndarray:
  """c_rr + phi_nr^T phi_nr on the upper triangle (the lower one is c_rr's), by BLAS syrk.

  Leading batch axes (from vmap) are looped over. Row-major phi [n, r] is the column-major
  [r, n] matrix A, so C = A A^T is one syrk without a copy of phi; the row-major upper
  triangle of C is the column-major lower one.
  """
  import scipy.linalg.blas  # pylint: disable=import-outside-toplevel
  c = np.array(c_rr)   # a writable copy: the callback's inputs are read-only views
  phi = np.asarray(phi_nr)
  syrk = scipy.linalg.blas.ssyrk if c.dtype == np.float32 else scipy.linalg.blas.dsyrk
  r, n = c.shape[-1], phi.shape[-2]
  c3, p3 = c.reshape(-1, r, r), phi.reshape(-1, n, r)
  for k in range(c3.shape[0]):
    out = syrk(1.0, p3[k].T, beta=1.0, c=c3[k].T, trans=0, lower=1, overwrite_c=1)
    if not np.shares_memory(out, c3[k]):
      c3[k] = out.T
  return c


def _tri_add(c_rr: jax.Array, phi_nr: jax.Array) -> jax.Array:
  """c_rr + phi_nr^T phi_nr, exact on the upper triangle: BLAS syrk on CPU, else an XLA dot."""

  def host(c_rr, phi_nr):
    return jax.pure_callback(_syrk_host, jax.ShapeDtypeStruct(c_rr.shape, c_rr.dtype),
                             c_rr, phi_nr, vmap_method="broadcast_all")

  def dot(c_rr, phi_nr):
    return c_rr + jax.lax.dot_general(phi_nr, phi_nr, (((0,), (0,)), ((), ())),
                                      precision=_HI)

  return jax.lax.platform_dependent(c_rr, phi_nr, cpu=host, default=dot)


def _tri_full(c_rr: jax.Array) -> jax.Array:
  """The symmetric [r, r] matrix whose upper triangle is c_rr's."""
  r = c_rr.shape[0]
  upper = jnp.arange(r)[None, :] >= jnp.arange(r)[:, None]
  return jnp.where(upper, c_rr, c_rr.T)


class _Gram(NamedTuple):
  """How a stream accumulates phi^T phi: zero(dtype) -> state, add(state, phi), full(state)."""
  zero: Callable[[Any], Any]
  add: Callable[[Any, jax.Array], Any]
  full: Callable[[Any], jax.Array]


def _gram_ops(r: int, method: str) -> _Gram:
  """Block upper-triangle panels of XLA dots ("xla") or one BLAS-updated triangle ("syrk")."""
  if method == "syrk":
    return _Gram(lambda dtype: jnp.zeros((r, r), dtype), _tri_add, _tri_full)
  starts = gram_blocks(r)
  return _Gram(lambda dtype: _gram_zero(r, dtype, starts),
               lambda panels, phi_nr: _gram_add(panels, phi_nr, starts),
               lambda panels: _gram_full(panels, starts))


class _Sums(NamedTuple):
  """Running sums of a moment stream: Gram state, Σ f y, Σ f, Σ y, Σ y²."""
  gram: Any
  b: jax.Array
  s: jax.Array
  ys: jax.Array
  yy: jax.Array


def _sums_zero(r: int, dtype: Any, gram: _Gram, t_shape: tuple[int, ...] = ()) -> _Sums:
  """Zero sums; t_shape = () for one target y [n], (t,) for t targets y [n, t]."""
  zero = jnp.zeros(t_shape, dtype)
  return _Sums(gram.zero(dtype), jnp.zeros(t_shape + (r,), dtype), jnp.zeros((r,), dtype),
               zero, zero)


def _sums_add(sums: _Sums, phi_nr: jax.Array, y_n: jax.Array, gram: _Gram) -> _Sums:
  dtype = sums.b.dtype
  phi_nr, y_n = phi_nr.astype(dtype), y_n.astype(dtype)
  # y_n is [n] (one target) or [n, t] (t targets sharing the features' Gram).
  return _Sums(gram.add(sums.gram, phi_nr),
               sums.b + jnp.matmul(y_n.T, phi_nr, precision=_HI),
               sums.s + phi_nr.sum(0), sums.ys + y_n.sum(0),
               sums.yy + jnp.sum(y_n * y_n, axis=0))


def _sums_moments(sums: _Sums, n: int, gram: _Gram) -> Moments:
  return Moments(G_rr=gram.full(sums.gram) / n, b_r=sums.b / n, mean_r=sums.s / n,
                 y_mean=sums.ys / n, yy=sums.yy / n)


def _sums_plus(a: _Sums, b: _Sums) -> _Sums:
  return jax.tree.map(jnp.add, a, b)


def _over_batch(local: Callable[[Any], _Sums], xs: Any) -> _Sums:
  """local(xs) summed over a "batch" mesh of this process's devices: each device streams its
  slice of xs (leading axis), the partial sums are added with psum, and the len % devices
  leftover items are streamed on every device. Same sums as local(xs) up to the order of
  addition. Single-process only (xs is a host-local array)."""
  if jax.process_count() > 1:
    raise ValueError("batch_sharded moments run within one process; got "
                     f"{jax.process_count()} processes")
  n_dev = jax.device_count()
  num = jax.tree.leaves(xs)[0].shape[0]
  head = num - num % n_dev
  if n_dev == 1 or head == 0:
    return local(xs)
  mesh = jax.make_mesh((n_dev,), ("batch",), axis_types=(jax.sharding.AxisType.Auto,))
  part = jax.shard_map(lambda x: jax.lax.psum(local(x), "batch"), mesh=mesh,
                       in_specs=jax.sharding.PartitionSpec("batch"),
                       out_specs=jax.sharding.PartitionSpec(), check_vma=False)
  sums = part(jax.tree.map(lambda a: a[:head], xs))
  if head < num:
    sums = _sums_plus(sums, local(jax.tree.map(lambda a: a[head:], xs)))
  return sums


def sample_moments(apply_fn: Callable[[Any, jax.Array], jax.Array], params: Any,
                   target_fn: Callable[[jax.Array], jax.Array], key: jax.Array, *,
                   n: int, chunk: int, d: int, sampler: Sampler = distributions.gaussian,
                   dtype: Any = jnp.float32, accum_dtype: Any = None,
                   batch_sharded: bool = False, gram: str | None = None) -> Moments:
  """Monte Carlo moments over n inputs x ~ sampler, streamed in chunks (memory O(r^2 + chunk r)).

  `target_fn` maps x_nd to y_n [n], or to y_nt [n, t] for t targets at once (then b_r is
  [t, r] and y_mean, yy are [t]: one Gram for all targets).
  Chunk i uses inputs `sampler(jax.random.fold_in(key, i), chunk, d, dtype=dtype)`; when n is
  not a multiple of chunk, one last chunk of n % chunk inputs uses index n // chunk.
  Sums accumulate in `accum_dtype` (default: the dtype of the features); pass jnp.float64
  (with x64 on) for float32 features and large n. n, chunk, d are static. Memory does not
  grow with n; time is linear in n.

  With `batch_sharded`, the chunks are split over all devices on a "batch" mesh axis (one
  large fit; not inside a sweep.over_seeds function, which already uses the devices): the
  same inputs, so the same moments up to the order of summation.

  `gram` picks how phi^T phi is accumulated (see `gram_method`): "syrk" (BLAS on the host,
  CPU), "xla" (block-triangular XLA dots), or None / "auto" (RFJAX_GRAM, else "xla"); the
  same moments up to rounding.
  """
  if n <= 0 or chunk <= 0:
    raise ValueError(f"n and chunk must be positive, got n={n}, chunk={chunk}")
  chunk = min(chunk, n)
  n_full, rest = divmod(n, chunk)

  def features(i, size):
    x_nd = sampler(jax.random.fold_in(key, i), size, d, dtype=dtype)
    return apply_fn(params, x_nd), target_fn(x_nd)

  phi_shape, y_shape = jax.eval_shape(lambda: features(0, chunk))
  r = phi_shape.shape[-1]
  t_shape = tuple(y_shape.shape[1:])
  # float64 asked for with x64 off falls back to float32 (canonical dtype).
  acc = jax.dtypes.canonicalize_dtype(phi_shape.dtype if accum_dtype is None else accum_dtype)
  ops = _gram_ops(r, gram_method(gram, acc))

  def add(sums, i, size):
    return _sums_add(sums, *features(i, size), ops)

  def local(idx):
    return jax.lax.scan(lambda c, i: (add(c, i, chunk), None),
                        _sums_zero(r, acc, ops, t_shape), idx)[0]

  idx = jnp.arange(n_full, dtype=jnp.uint32)
  sums = _over_batch(local, idx) if batch_sharded else local(idx)
  if rest:
    sums = add(sums, n_full, rest)
  return _sums_moments(sums, n, ops)


def data_moments(apply_fn: Callable[[Any, jax.Array], jax.Array], params: Any,
                 x_nd: jax.typing.ArrayLike, y_n: jax.typing.ArrayLike, *, chunk: int,
                 accum_dtype: Any = None, batch_sharded: bool = False,
                 gram: str | None = None) -> Moments:
  """Sample moments of given data x_nd [n, d], y_n [n], streamed in chunks of rows.

  The same sums as `sample_moments`, over fixed inputs: features are formed chunk by chunk
  (memory O(r^2 + chunk r) beyond the data), never as an [n, r] matrix. chunk is static.
  With `batch_sharded`, the rows are split over all devices on a "batch" mesh axis, each
  device streaming its rows (see sample_moments). `gram` as in sample_moments.
  """
  x_nd, y_n = jnp.asarray(x_nd), jnp.asarray(y_n)
  n = x_nd.shape[0]
  if n <= 0 or chunk <= 0:
    raise ValueError(f"n and chunk must be positive, got n={n}, chunk={chunk}")
  if y_n.shape != (n,):
    raise ValueError(f"y_n must have shape ({n},), got {y_n.shape}")
  chunk = min(chunk, n)
  phi_shape = jax.eval_shape(lambda: apply_fn(params, x_nd[:chunk]))
  r = phi_shape.shape[-1]
  acc = jax.dtypes.canonicalize_dtype(phi_shape.dtype if accum_dtype is None else accum_dtype)
  ops = _gram_ops(r, gram_method(gram, acc))

  def add(sums, xy):
    x_cd, y_c = xy
    return _sums_add(sums, apply_fn(params, x_cd), y_c, ops)

  def local(xy):
    x_md, y_m = xy
    m = x_md.shape[0]
    size = min(chunk, m)
    n_full, rest = divmod(m, size)
    head = n_full * size
    xs = (x_md[:head].reshape(n_full, size, -1), y_m[:head].reshape(n_full, size))
    sums, _ = jax.lax.scan(lambda c, b: (add(c, b), None), _sums_zero(r, acc, ops), xs)
    if rest:
      sums = add(sums, (x_md[head:], y_m[head:]))
    return sums

  sums = _over_batch(local, (x_nd, y_n)) if batch_sharded else local((x_nd, y_n))
  return _sums_moments(sums, n, ops)


def exact_moments(form: Any, target: Any) -> Moments:
  """Exact Gaussian moments for ridge features (features.RidgeForm) and a targets.Target."""
  from rfjax import gaussian, targets  # pylint: disable=import-outside-toplevel
  return Moments(G_rr=gaussian.ridge_gram(form), b_r=targets.target_cross(form, target),
                 mean_r=gaussian.ridge_mean(form),
                 y_mean=jnp.asarray(targets.target_mean(target)),
                 yy=jnp.asarray(targets.target_second_moment(target)))


# --------------------------------------------------------------------------- helpers


def _augmented(m: Moments) -> tuple[jax.Array, jax.Array]:
  """Moments of [f, 1]: G_aug [r+1, r+1] and b_aug [r+1]."""
  one = jnp.ones((1, 1), m.G_rr.dtype)
  G_aug = jnp.block([[m.G_rr, m.mean_r[:, None]], [m.mean_r[None, :], one]])
  b_aug = jnp.concatenate([m.b_r, jnp.reshape(m.y_mean, (1,)).astype(m.b_r.dtype)])
  return G_aug, b_aug


def centred(m: Moments) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Moments with u0 eliminated: Gc = Cov(f) [r, r], bc = Cov(f, y) [r], yyc = Var(y)."""
  Gc = m.G_rr - jnp.outer(m.mean_r, m.mean_r)
  Gc = 0.5 * (Gc + Gc.T)
  return Gc, m.b_r - m.y_mean * m.mean_r, m.yy - m.y_mean**2


def best_bias(m: Moments, u_r: jax.typing.ArrayLike) -> jax.Array:
  """The optimal u0 for fixed u: E y - E f . u."""
  return m.y_mean - jnp.dot(m.mean_r, u_r, precision=_HI)


def error(m: Moments, u_r: jax.typing.ArrayLike, u0: jax.typing.ArrayLike) -> jax.Array:
  """Population squared error E(sum_i u_i f_i + u0 - y)^2 (callers normalise, e.g. by yy)."""
  u_r = jnp.asarray(u_r)
  Gu = jnp.matmul(m.G_rr, u_r, precision=_HI)
  return (jnp.dot(u_r, Gu, precision=_HI) + 2 * u0 * jnp.dot(m.mean_r, u_r, precision=_HI)
          + u0 * u0 - 2 * jnp.dot(m.b_r, u_r, precision=_HI) - 2 * u0 * m.y_mean + m.yy)


# --------------------------------------------------------------------------- fits


def ridge(m: Moments, lam: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Ridge fit (G_aug + lam diag(1,..,1,0)) [u; u0] = b_aug by Cholesky: (u_r [r], u0)."""
  G_aug, b_aug = _augmented(m)
  r = m.b_r.shape[0]
  reg = jnp.concatenate([jnp.ones((r,), G_aug.dtype), jnp.zeros((1,), G_aug.dtype)])
  u = linalg.cholesky_solve(G_aug + lam * jnp.diag(reg), b_aug)
  return u[:r], u[r]


def least_squares(m: Moments, rcond: float | None = None) -> tuple[jax.Array, jax.Array]:
  """Minimal-norm least squares (u_r [r], u0): pseudo-inverse of Cov(f), eigenvalues below
  rcond * max eigenvalue dropped (default 10 r eps), so duplicated features are fine."""
  Gc, bc, _ = centred(m)
  r = bc.shape[0]
  if rcond is None:
    rcond = 10 * r * float(jnp.finfo(Gc.dtype).eps)
  w, V = linalg.eigh(Gc)
  keep = w > rcond * jnp.max(w)
  w_inv = jnp.where(keep, 1 / jnp.where(keep, w, 1), 0)
  u = jnp.matmul(V, w_inv * jnp.matmul(V.T, bc, precision=_HI), precision=_HI)
  return u, best_bias(m, u)


def _top_eigenvalue(matvec: Callable[[jax.Array], jax.Array], diag_r: jax.Array,
                    num_iters: int, safety: float) -> jax.Array:
  """Upper estimate of lambda_max of a PSD operator [r, r] given by `matvec` and its diagonal."""
  r, dtype = diag_r.shape[0], diag_r.dtype

  def step(v, _):
    w = matvec(v)
    return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(w.dtype).tiny), None

  # A deterministic start vector with a small non-constant part, so it is not orthogonal
  # to the top eigenvector of a centred Gram (whose constant vector may be near its null space).
  v = jnp.ones(r, dtype) / jnp.sqrt(r) + 1e-2 * jnp.sin(jnp.arange(r, dtype=dtype) + 1.0)
  v, _ = jax.lax.scan(step, v / jnp.linalg.norm(v), None, length=num_iters)
  # The Rayleigh quotient is a lower bound; so is max G_ii. Never zero.
  lam = jnp.maximum(jnp.dot(v, matvec(v), precision=_HI), jnp.max(diag_r))
  return safety * jnp.maximum(lam, jnp.finfo(dtype).tiny)


def lipschitz(G_rr: jax.Array, num_iters: int = 64, safety: float = 1.02) -> jax.Array:
  """Upper estimate of lambda_max of a PSD G [r, r]: power iteration, times `safety`."""
  return _top_eigenvalue(lambda v: jnp.matmul(G_rr, v, precision=_HI), jnp.diag(G_rr),
                         num_iters, safety)


def _fista(grad: Callable[[jax.Array], jax.Array], project: Callable[[jax.Array], jax.Array],
           step: jax.Array, v0: jax.Array, num_iters: int) -> jax.Array:
  """Accelerated projected gradient (FISTA) with gradient restart, from a feasible v0."""

  def body(carry, _):
    v, z, t = carry
    v_new = project(z - step * grad(z))
    t_new = 0.5 * (1 + jnp.sqrt(1 + 4 * t * t))
    # Gradient restart (O'Donoghue & Candes 2015): drop momentum when it points uphill.
    restart = jnp.dot(z - v_new, v_new - v, precision=_HI) > 0
    t_new = jnp.where(restart, 1.0, t_new).astype(t.dtype)
    beta = jnp.where(restart, 0.0, (t - 1) / t_new)
    return (v_new, v_new + beta * (v_new - v), t_new), None

  (v, _, _), _ = jax.lax.scan(body, (v0, v0, jnp.ones((), v0.dtype)), None, length=num_iters)
  return v


@functools.partial(jax.jit, static_argnames=("num_iters", "power_iters", "precondition"))
def box_fit(m: Moments, B_grid: jax.typing.ArrayLike, *, num_iters: int = 300,
            power_iters: int = 64, precondition: bool = True,
            u_hint_r: jax.typing.ArrayLike | None = None) -> BoxFit:
  """min E(sum u_i f_i + u0 - y)^2 s.t. |u_i| <= B, for each B of an increasing grid [nB].

  u0 is eliminated exactly (u0 = E y - E f . u), leaving the centred quadratic
  u^T Gc u - 2 bc . u + Var(y). With `precondition`, u = v / sqrt(diag Gc) (Jacobi scaling;
  the feasible set stays a box, |v_i| <= B sqrt(Gc_ii)). Solved by FISTA with adaptive
  (gradient) restart and step 1/L (L = lambda_max by power iteration), `num_iters`
  iterations per B, warm-started from the previous B, or from clip(u_hint_r) to the box
  when that is better (pass least_squares(m)[0] to make every B beyond max|u_ls| exact
  and to speed up large B on ill-conditioned G). The FISTA update is written here;
  optax supplies the projection (optax.projections.projection_box).
  Returns BoxFit(errors_B, u_Br, u0_B, kkt_B, gap_B).
  """
  B_grid = jnp.asarray(B_grid, m.G_rr.dtype)
  Gc, bc, _ = centred(m)
  diag = jnp.diag(Gc)
  if precondition:
    # Features with Var f_i = 0 (constant or dead) have a zero row: leave them unscaled.
    scale_r = jnp.where(diag > 0, 1 / jnp.sqrt(jnp.where(diag > 0, diag, 1)), 1)
  else:
    scale_r = jnp.ones_like(diag)
  Gs = scale_r[:, None] * Gc * scale_r[None, :]
  bs = scale_r * bc
  L = lipschitz(Gs, power_iters)
  step = 1 / L

  def grad(v):
    return jnp.matmul(Gs, v, precision=_HI) - bs

  def solve_one(v_start, B):
    hi_r = B / scale_r
    project = lambda v: optax.projections.projection_box(v, -hi_r, hi_r)

    v0 = project(v_start)
    if u_hint_r is not None:
      v_hint = project(jnp.asarray(u_hint_r, bs.dtype) / scale_r)
      f = lambda v: jnp.dot(v, 0.5 * jnp.matmul(Gs, v, precision=_HI) - bs)
      v0 = jnp.where(f(v_hint) < f(v0), v_hint, v0)
    v = _fista(grad, project, step, v0, num_iters)
    g = grad(v)
    kkt = L * jnp.linalg.norm(v - project(v - step * g))
    # Frank-Wolfe gap of the error 2 (v.Gs v/2 - bs.v): a certified bound on its excess
    # over the constrained minimum, since error(v) - min <= grad.(v - v') for all feasible v'.
    gap = 2 * (jnp.dot(g, v, precision=_HI) + jnp.dot(jnp.abs(g), hi_r, precision=_HI))
    return v, (v * scale_r, kkt, jnp.maximum(gap, 0))

  _, (u_Br, kkt_B, gap_B) = jax.lax.scan(solve_one, jnp.zeros_like(bc), B_grid)
  u0_B = jax.vmap(functools.partial(best_bias, m))(u_Br)
  errors_B = jax.vmap(functools.partial(error, m))(u_Br, u0_B)
  return BoxFit(errors_B=errors_B, u_Br=u_Br, u0_B=u0_B, kkt_B=kkt_B, gap_B=gap_B)


def smallest_B(B_grid: jax.typing.ArrayLike, errors_B: jax.typing.ArrayLike,
               eps: jax.typing.ArrayLike) -> jax.Array:
  """The smallest grid B [nB] whose error is <= eps, or NaN if none (for r * min B)."""
  B_grid, errors_B = jnp.asarray(B_grid), jnp.asarray(errors_B)
  ok = errors_B <= eps
  return jnp.where(jnp.any(ok), B_grid[jnp.argmax(ok)], jnp.nan)


# --------------------------------------------------------------------------- hinge readout


class HingeFit(NamedTuple):
  """Result of `hinge_ball_fit` over a grid of radii (index B)."""
  u_Br: jax.Array       # fitted readout, ‖u‖ <= radius, [nB, r]
  hinge_B: jax.Array    # mean hinge loss max(0, 1 − y φ·u) on the fit sample, [nB]
  smooth_B: jax.Array   # the smoothed objective that was minimised, [nB]


def smoothed_hinge(m: jax.Array, mu: float) -> jax.Array:
  """Huberised hinge of the margin m: 0 for m ≥ 1, (1−m)²/(2μ) on (1−μ, 1), 1 − m − μ/2 below.

  ℓ_μ ≤ hinge ≤ ℓ_μ + μ/2, and ℓ_μ' is 1/μ-Lipschitz.
  """
  gap = 1 - m
  return jnp.where(gap <= 0, 0.0, jnp.where(gap < mu, gap * gap / (2 * mu), gap - mu / 2))


@functools.partial(jax.jit, static_argnames=("num_iters", "power_iters"))
def hinge_ball_fit(phi_nr: jax.Array, y_n: jax.Array, radii_B: jax.typing.ArrayLike, *,
                   mu: float = 0.02, num_iters: int = 400,
                   power_iters: int = 32) -> HingeFit:
  """min_u mean ℓ_μ(y φ·u) s.t. ‖u‖ <= radius, for each radius of an increasing grid.

  The best readout WITHOUT bias on fixed features φ (Thm 3.2's comparator, docs/theory.md
  'SGD on the two-layer net': U* in the ball
  ‖U*‖ <= C/√r): FISTA with gradient restart on the smoothed hinge, step μ n/λ_max(ΦᵀΦ),
  projection by optax.projections.projection_l2_ball, warm-started along the grid.
  The reported hinge is the true (unsmoothed) hinge, within μ/2 + optimisation error of
  the constrained minimum.
  """
  radii_B = jnp.asarray(radii_B, phi_nr.dtype)
  n = phi_nr.shape[0]
  mm = lambda a, b: jnp.matmul(a, b, precision=_HI)

  lam = _top_eigenvalue(lambda v: mm(phi_nr.T, mm(phi_nr, v)), jnp.sum(phi_nr**2, 0),
                        power_iters, 1.02)
  step = mu * n / lam

  def objective(u):
    return jnp.mean(smoothed_hinge(y_n * mm(phi_nr, u), mu))

  grad = jax.grad(objective)

  def solve_one(u_start, radius):
    project = lambda u: optax.projections.projection_l2_ball(u, radius)

    u = _fista(grad, project, step, project(u_start), num_iters)
    hinge = jnp.mean(jnp.maximum(0.0, 1 - y_n * mm(phi_nr, u)))
    return u, (u, hinge, objective(u))

  _, (u_Br, hinge_B, smooth_B) = jax.lax.scan(
      solve_one, jnp.zeros(phi_nr.shape[1], phi_nr.dtype), radii_B)
  return HingeFit(u_Br=u_Br, hinge_B=hinge_B, smooth_B=smooth_B)


class HingeCertificate(NamedTuple):
  """A certified bracket of min_{‖u‖ ≤ radius} mean max(0, 1 − y φ·u), per radius (index B)."""
  hinge_B: jax.Array    # the hinge of the given (feasible) u: an upper bound, [nB]
  lower_B: jax.Array    # a weak-duality lower bound on the constrained minimum, [nB]
  gap_B: jax.Array      # hinge_B − lower_B ≥ hinge(u) − min, [nB]


@jax.jit
def hinge_ball_certificate(phi_nr: jax.Array, y_n: jax.Array, u_Br: jax.Array,
                           radii_B: jax.typing.ArrayLike, mu: float = 0.02) -> HingeCertificate:
  """Duality-gap certificate of readouts u_Br with ‖u_b‖ ≤ radius_b (docs/theory.md, "SGD on
  the two-layer net").

  max(0, 1 − m) = max_{α ∈ [0,1]} α(1 − m), so for every α ∈ [0,1]^n

      min_{‖u‖ ≤ ρ} mean max(0, 1 − y φ·u)  ≥  mean(α) − ρ ‖Φᵀ(α ∘ y)‖ / n

  (the minimum over the ball of the linear term is −ρ‖·‖). The α tried are the derivatives
  of the smoothed hinge at u's margins, clip((1 − m)/μ', 0, 1) for μ' = μ, μ/4, μ/16, and
  the subgradient 1{m < 1}; the best bound is kept. u_Br must lie in the balls (the hinge
  of an infeasible u bounds nothing); the caller checks that.
  """
  radii_B = jnp.asarray(radii_B, phi_nr.dtype)
  n = phi_nr.shape[0]
  mm = lambda a, b: jnp.matmul(a, b, precision=_HI)

  def one(u_r, radius):
    m_n = y_n * mm(phi_nr, u_r)
    hinge = jnp.mean(jnp.maximum(0.0, 1 - m_n))
    alphas_kn = jnp.stack([jnp.clip((1 - m_n) / s, 0.0, 1.0) for s in (mu, mu / 4, mu / 16)]
                          + [(m_n < 1).astype(m_n.dtype)])
    norms_k = jnp.linalg.norm(mm(alphas_kn * y_n[None, :], phi_nr), axis=1)
    lower = jnp.max(jnp.mean(alphas_kn, axis=1) - radius * norms_k / n)
    return hinge, lower

  hinge_B, lower_B = jax.vmap(one)(u_Br, radii_B)
  return HingeCertificate(hinge_B=hinge_B, lower_B=lower_B, gap_B=hinge_B - lower_B)
