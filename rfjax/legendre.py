"""Legendre integral representation of a polynomial (Thm 3.4; docs/theory.md "Integral
representation (Thm 3.4)"), float64.

P(x) = Σ_I α_I x^I. With v = √d w ~ U([-1,1]^d) and ĝ(v) = g(v/√d), the construction picks

  ĝ(v) = Σ_{|J|≤K} b_J L_J(v),   L_J(v) = Π_i P_{j_i}(v_i),   b_J = Π_i(2j_i+1) c_J,
  c_J = Σ_{I≤J} λ_{J,I} m_I,     m_I = α_I I! d^{|I|/2} / (a_{|I|} |I|!)   (0 off P's support),

so that E[v^I ĝ] = m_I for all |I| ≤ K, hence E_v[σ(<v,x>/√d) ĝ(v)] = P(x) + (Taylor tail of
degree > K). K = deg σ makes it exact for polynomial σ. Here λ_{J,I} = Π_i [t^{i_i}]P_{j_i}(t).

Evaluation of the integral for the residual does NOT reuse λ: for polynomial σ it uses the
moment formula with E[v^I L_J] = Π_i μ_{i_i,j_i} (closed form, below); for σ a sum of
exponentials c·e^{βz} (exp, sincos) it uses separability, E[e^{β<v,x>/√d} L_J(v)] =
Π_i E_t[e^{β x_i t/√d} P_{j_i}(t)], each a 1-D Gauss–Legendre integral (exact to rounding).
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rfjax import activations

# σ(z) = Σ c e^{βz}: the forms whose integral against ĝ separates over coordinates.
EXPONENTIAL_FORMS: dict[str, tuple[tuple[complex, complex], ...]] = {
    "exp": ((1.0 + 0j, 1.0 + 0j),),
    "sincos": (((1 - 1j) / 2, 1j), ((1 + 1j) / 2, -1j)),   # sin z + cos z
}


def legendre_table(t: jax.Array, n: int, xp=jnp) -> jax.Array:
  """P_0(t)..P_n(t) by (m+1)P_{m+1} = (2m+1)tP_m − mP_{m−1}; xp = jnp or numpy. [..., n + 1]."""
  t = xp.asarray(t)
  vals = [xp.ones_like(t)]
  if n >= 1:
    vals.append(t)
  for m in range(1, n):
    vals.append(((2 * m + 1) * t * vals[m] - m * vals[m - 1]) / (m + 1))
  return xp.stack(vals, axis=-1)


def legendre_coefficients(n: int) -> np.ndarray:
  """Monomial coefficients: row j holds [t^0..t^n] of P_j (same recurrence). [n+1, n+1]."""
  c = np.zeros((n + 1, n + 1))
  c[0, 0] = 1.0
  if n >= 1:
    c[1, 1] = 1.0
  for m in range(1, n):
    c[m + 1, 1:] += (2 * m + 1) * c[m, :-1]
    c[m + 1] -= m * c[m - 1]
    c[m + 1] /= m + 1
  return c


def moment(m: int, n: int) -> float:
  """μ_{m,n} = E_{t~U[-1,1]}[t^m P_n(t)] in closed form:
  2^n m! ((m+n)/2)! / (((m−n)/2)! (m+n+1)!) for m ≥ n, m − n even; 0 otherwise."""
  if m < n or (m - n) % 2:
    return 0.0
  return (2.0**n * math.factorial(m) * math.factorial((m + n) // 2)
          / (math.factorial((m - n) // 2) * math.factorial(m + n + 1)))


def moment_table(m_max: int, n_max: int) -> np.ndarray:
  """μ_{m,n} for m ≤ m_max, n ≤ n_max. [m_max + 1, n_max + 1]."""
  return np.array([[moment(m, n) for n in range(n_max + 1)] for m in range(m_max + 1)])


def cube_moment(j: tuple[int, ...]) -> float:
  """E_{w ~ U([-1/√d, 1/√d]^d)} w^J = Π_i d^{−j_i/2}/(j_i + 1) (all j_i even; else 0), d = len(j)."""
  d = len(j)
  if any(ji % 2 for ji in j):
    return 0.0
  return float(np.prod([d ** (-ji / 2) / (ji + 1) for ji in j]))


def multi_indices(d: int, k: int) -> np.ndarray:
  """All J ∈ N^d with |J| ≤ k, ordered by degree then lexicographically. int [T, d]."""
  out = []
  for deg in range(k + 1):
    for combo in itertools.combinations_with_replacement(range(d), deg):
      j = [0] * d
      for i in combo:
        j[i] += 1
      out.append(tuple(j))
  out = sorted(set(out), key=lambda j: (sum(j), tuple(-x for x in j)))
  return np.array(out, dtype=np.int32).reshape(len(out), d)


def multinomial(i_sd: np.ndarray) -> np.ndarray:
  """binom(|I|, I) = |I|! / I! per row. float64 [S]."""
  return np.array([math.factorial(int(sum(i))) / np.prod([math.factorial(int(x)) for x in i])
                   for i in i_sd])


def _fact_ratio(i_sd: np.ndarray) -> np.ndarray:
  return 1.0 / multinomial(i_sd)                     # I! / |I|!


class Construction(NamedTuple):
  """The linear map α (over P's candidate monomials) -> b (over Legendre products)."""
  d: int
  k: int                      # max degree of P
  K: int                      # degree of ĝ (= deg σ for polynomial σ)
  sigma: str
  i_sd: np.ndarray            # candidate monomials of P: |I| ≤ k with a_{|I|} ≠ 0. int [S, d]
  j_td: np.ndarray            # Legendre products of ĝ: |J| ≤ K. int [T, d]
  map_ts: np.ndarray          # b = map_ts @ α. float64 [T, S]
  a_k: float                  # A_k = max 1/|a_n| over supported n ≤ k


@functools.lru_cache(maxsize=64)
def prepare(sigma: str, d: int, k: int, K: int | None = None) -> Construction:
  """Precomputes the construction for σ, dimension d, deg P ≤ k, ĝ of degree K (numpy)."""
  act = activations.get(sigma)
  a = activations.taylor_or_raise(act, max(k, K or 0))
  if K is None:
    if act.degree is None:
      raise ValueError(f"σ={sigma!r} is not a polynomial: give the truncation degree K")
    K = max(act.degree, k)
  if K < k:
    raise ValueError(f"truncation degree K={K} must be >= k={k}")
  cand = multi_indices(d, k)
  i_sd = cand[np.array([a[int(s)] != 0 for s in cand.sum(1)])]
  j_td = multi_indices(d, K)
  scale_s = np.array([d ** (s / 2) / a[int(s)] for s in i_sd.sum(1)]) * _fact_ratio(i_sd)
  lam = legendre_coefficients(K)                     # lam[j, i] = [t^i] P_j
  lam_ts = np.prod(lam[j_td[:, None, :], i_sd[None, :, :]], axis=-1)      # λ_{J,I}
  weight_t = np.prod(2 * j_td + 1, axis=1).astype(np.float64)
  map_ts = weight_t[:, None] * lam_ts * scale_s[None, :]
  return Construction(d, k, K, sigma, i_sd, j_td, map_ts,
                      activations.coefficient_constant(act, k))


def coefficients(cons: Construction, alpha_s: jax.Array) -> jax.Array:
  """b_J of ĝ for P = Σ_s α_s x^{I_s}. [T]."""
  return jnp.dot(jnp.asarray(cons.map_ts), alpha_s, precision=jax.lax.Precision.HIGHEST)


def construct(poly: dict[tuple[int, ...], float], sigma: str, d: int,
              K: int | None = None) -> tuple[Construction, np.ndarray]:
  """ĝ for P given as multi-index -> coefficient. Returns (construction, b_t numpy)."""
  k = max((sum(i) for i in poly), default=0)
  cons = prepare(sigma, d, k, K)
  index = {tuple(int(x) for x in i): s for s, i in enumerate(cons.i_sd)}
  alpha = np.zeros(len(cons.i_sd))
  for i, c in poly.items():
    if len(i) != d:
      raise ValueError(f"multi-index {i} has length {len(i)} != d={d}")
    if c != 0 and tuple(i) not in index:
      raise ValueError(f"monomial x^{tuple(i)} is not supported by σ={sigma!r}: a_{sum(i)} = 0")
    if c != 0:
      alpha[index[tuple(i)]] += c
  return cons, np.asarray(coefficients(cons, jnp.asarray(alpha)))


def _degree(j_td, K: int | None) -> int:
  """K if given (needed when j_td is a traced array), else the largest index in j_td."""
  if K is not None:
    return K
  return int(np.max(j_td)) if np.size(j_td) else 0


def g_hat(j_td: np.ndarray, b_t: jax.Array, v_nd: jax.Array, xp=jnp,
          K: int | None = None) -> jax.Array:
  """ĝ(v) = Σ_J b_J Π_i P_{j_i}(v_i) for v in [-1,1]^d; b_t may be [T, s]. [n] or [n, s].

  j_td may be a traced int array when K (≥ every index in it) is given."""
  K = _degree(j_td, K)
  table = legendre_table(v_nd, K, xp)                # [n, d, K+1]
  prod = xp.ones((v_nd.shape[0], j_td.shape[0]), v_nd.dtype)
  for i in range(j_td.shape[1]):
    prod = prod * table[:, i, :][:, j_td[:, i]]
  return prod @ b_t


def g(j_td: np.ndarray, b_t: jax.Array, w_nd: jax.Array) -> jax.Array:
  """g(w) = ĝ(√d w) on the cube [-1/√d, 1/√d]^d. [n]."""
  return g_hat(j_td, b_t, w_nd * math.sqrt(w_nd.shape[-1]))


def g_hat_chunked(j_td: np.ndarray, b_t: jax.Array, v_nd: jax.Array, chunk: int,
                  K: int | None = None) -> jax.Array:
  """g_hat over n = m·chunk points, chunk by chunk (memory O(chunk·T)). [n]."""
  n, d = v_nd.shape
  out = jax.lax.map(lambda v: g_hat(j_td, b_t, v, K=K), v_nd.reshape(n // chunk, chunk, d))
  return out.reshape(n)


def abs_coefficient_sum(b_t: jax.Array) -> jax.Array:
  """Σ_J |b_J|: a rigorous upper bound on sup|ĝ| since |L_J| ≤ 1 on the cube."""
  return jnp.sum(jnp.abs(b_t))


BOUND_FORMS = ("binomial", "power")


def bound_g(alpha: float, a_k: float, d: int, k: int, form: str = "binomial") -> float:
  """Thm 3.4's bound on sup|g| in k, the degree of P (docs/theory.md "Integral representation
  (Thm 3.4)"): α A_k (3(1+√2))^k C(d+k, k) d^{k/2} ("binomial"), or with (d+1)^k for
  C(d+k, k) ("power", the looser form). α = |P| = max|α_I|, A_k = max 1/|a_n| (n ≤ k)."""
  if form not in BOUND_FORMS:
    raise ValueError(f"bound form must be one of {BOUND_FORMS}, got {form!r}")
  count = math.comb(d + k, k) if form == "binomial" else (d + 1) ** k
  return alpha * a_k * (3 * (1 + math.sqrt(2))) ** k * count * d ** (k / 2)


def l2_weights(j_td: np.ndarray) -> np.ndarray:
  """E[L_J²] = Π_i 1/(2j_i + 1) under U([-1, 1]^d). float64 [T]."""
  return 1.0 / np.prod(2.0 * np.asarray(j_td) + 1.0, axis=1)


def g_l2(j_td: np.ndarray, b_t: jax.Array) -> jax.Array:
  """‖ĝ‖₂ = (E_v ĝ(v)²)^{1/2} = (Σ_J b_J² E[L_J²])^{1/2}, exact by orthogonality. Scalar."""
  return jnp.sqrt(jnp.sum(jnp.asarray(l2_weights(j_td), b_t.dtype) * b_t**2))


def remainder_derivative_bound(sigma: str, K: int) -> float:
  """M_{K+1} ≥ max_{|z|≤1} |σ^{(K+1)}(z)|: Σ|c||β|^{K+1}e^{|Re β|} for σ = Σ c e^{βz};
  Σ_{n>K} |a_n| n!/(n−K−1)! for polynomial σ (0 when K ≥ deg σ)."""
  act = activations.get(sigma)
  if act.degree is not None:
    a = activations.taylor_or_raise(act, act.degree)
    return float(sum(abs(a[n]) * math.factorial(n) / math.factorial(n - K - 1)
                     for n in range(K + 1, act.degree + 1)))
  if sigma not in EXPONENTIAL_FORMS:
    raise ValueError(f"no derivative bound for σ={sigma!r}; known: {sorted(EXPONENTIAL_FORMS)}")
  return float(sum(abs(c) * abs(beta) ** (K + 1) * math.exp(abs(beta.real))
                   for c, beta in EXPONENTIAL_FORMS[sigma]))


def truncation_residual_factor(sigma: str, d: int, K: int) -> float:
  """F with sup_{‖x‖≤1} |E_v[σ(<v,x>/√d) ĝ_K(v)] − P(x)| ≤ F·‖ĝ_K‖₂ (docs/theory.md
  "Integral representation (Thm 3.4)"): M_{K+1}/(K+1)! · ((2K+1)!!/(3d)^{K+1})^{1/2}."""
  double_fact = math.prod(range(1, 2 * K + 2, 2))
  return (remainder_derivative_bound(sigma, K) / math.factorial(K + 1)
          * math.sqrt(double_fact / (3.0 * d) ** (K + 1)))


def vertices(d: int) -> np.ndarray:
  """The 2^d vertices of [-1, 1]^d. [2^d, d]."""
  return np.array(list(itertools.product((-1.0, 1.0), repeat=d)))


def sup_g_estimate(key: jax.Array, j_td: np.ndarray, b_t: jax.Array, *, num: int,
                   chunk: int, refine: int = 16, steps: int = 40,
                   K: int | None = None) -> jax.Array:
  """Lower estimate of sup_{[-1,1]^d}|ĝ|: num uniform points + vertices + projected ascent.

  The best `refine` points are refined by normalised gradient ascent on |ĝ| projected onto
  the cube (step 0.2·0.9^t). j_td may be traced when K is given (see g_hat). Scalar.
  """
  d = j_td.shape[1]
  K = _degree(j_td, K)
  v = jax.random.uniform(key, (num, d), b_t.dtype, -1.0, 1.0)
  vals = jnp.abs(g_hat_chunked(j_td, b_t, v, chunk, K))
  # times a runtime 1, so that XLA does not fold ĝ at the 2^d constant vertices at compile time
  vert = jnp.asarray(vertices(d), b_t.dtype) * jnp.ones_like(v[0, 0])
  best = jnp.maximum(jnp.max(vals), jnp.max(jnp.abs(g_hat(j_td, b_t, vert, K=K))))
  start = v[jax.lax.top_k(vals, refine)[1]]
  grad = jax.vmap(jax.grad(lambda u: jnp.abs(g_hat(j_td, b_t, u[None], K=K)[0])))

  def step(u, t):
    gr = grad(u)
    gr = gr / (jnp.linalg.norm(gr, axis=1, keepdims=True) + 1e-30)
    return jnp.clip(u + 0.2 * 0.9**t * gr, -1.0, 1.0), None

  u, _ = jax.lax.scan(step, start, jnp.arange(steps, dtype=b_t.dtype))
  return jnp.maximum(best, jnp.max(jnp.abs(g_hat(j_td, b_t, u, K=K))))


def polynomial_eval(i_sd: np.ndarray, alpha_s: jax.Array, x_nd: jax.Array, xp=jnp) -> jax.Array:
  """P(x) = Σ_s α_s x^{I_s}; alpha may be [S, s]. [n] or [n, s]."""
  mono = xp.prod(x_nd[:, None, :] ** xp.asarray(i_sd)[None], axis=-1)   # [n, S]
  return mono @ alpha_s


def integral_poly_map(sigma: str, j_td: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """For polynomial σ: E_v[σ(<v,x>/√d) ĝ(v)] = Σ_I q_I x^I exactly with q = q_st @ b, where
  q_st[I, J] = a_{|I|} d^{-|I|/2} binom(|I|,I) E[v^I L_J] and E[v^I L_J] = Π_i μ_{i_i,j_i}.
  Returns (i_sd over |I| ≤ deg σ [S, d], q_st [S, T]), numpy float64."""
  act = activations.get(sigma)
  if act.degree is None:
    raise ValueError(f"σ={sigma!r} is not a polynomial")
  d = j_td.shape[1]
  D = act.degree
  a = activations.taylor_or_raise(act, D)
  i_sd = multi_indices(d, D)
  mu = moment_table(D, max(int(j_td.max()), D))
  e_st = np.prod(mu[i_sd[:, None, :], j_td[None, :, :]], axis=-1)       # E[v^I L_J]
  deg = i_sd.sum(1)
  return i_sd, (a[deg] * d ** (-deg / 2.0) * multinomial(i_sd))[:, None] * e_st


def integral_poly_coefficients(sigma: str, j_td: np.ndarray, b_t: jax.Array, xp=jnp
                               ) -> tuple[np.ndarray, jax.Array]:
  """For polynomial σ: (i_sd over |I| ≤ deg σ, q_s) with E_v[σ(<v,x>/√d) ĝ(v)] = Σ_I q_I x^I
  exactly (integral_poly_map); b_t may be [T, s]."""
  i_sd, q_st = integral_poly_map(sigma, j_td)
  return i_sd, xp.asarray(q_st) @ b_t


def integral_exponential(sigma: str, j_td: np.ndarray, b_t: jax.Array, x_nd: jax.Array,
                         nodes: int = 48, xp=jnp, K: int | None = None) -> jax.Array:
  """E_v[σ(<v,x>/√d) ĝ(v)] for σ = Σ c e^{βz} by separability and 1-D Gauss–Legendre. [n].

  j_td may be a traced int array when K (≥ every index in it) is given."""
  if sigma not in EXPONENTIAL_FORMS:
    raise ValueError(f"no exponential form for σ={sigma!r}; known: {sorted(EXPONENTIAL_FORMS)}")
  d = x_nd.shape[1]
  K = _degree(j_td, K)
  t_q, w_q = np.polynomial.legendre.leggauss(nodes)
  pw_qk = xp.asarray((w_q / 2.0)[:, None] * np.polynomial.legendre.legvander(t_q, K))  # [Q, K+1]
  total = xp.zeros((x_nd.shape[0],) + b_t.shape[1:], xp.complex128)
  for c, beta in EXPONENTIAL_FORMS[sigma]:
    u = beta * x_nd.astype(xp.complex128) / math.sqrt(d)                 # [n, d]
    psi = xp.einsum("ndq,qk->ndk", xp.exp(u[..., None] * xp.asarray(t_q)[None, None, :]), pw_qk)
    prod = xp.ones((x_nd.shape[0], j_td.shape[0]), xp.complex128)
    for i in range(d):
      prod = prod * psi[:, i, :][:, j_td[:, i]]
    total = total + c * (prod @ b_t.astype(xp.complex128))
  return xp.real(total)


def integral(sigma: str, j_td: np.ndarray, b_t: jax.Array, x_nd: jax.Array, xp=jnp) -> jax.Array:
  """E_w[g(w) σ(<w,x>)] = c_d ∫ g σ for w ~ U([-1/√d,1/√d]^d), exactly; xp = jnp or numpy. [n]."""
  act = activations.get(sigma)
  if act.degree is not None:
    i_sd, q_s = integral_poly_coefficients(sigma, j_td, b_t, xp)
    return polynomial_eval(i_sd, q_s, x_nd, xp)
  return integral_exponential(sigma, j_td, b_t, x_nd, xp=xp)
