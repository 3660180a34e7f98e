"""The hinge readout's duality-gap certificate against an independent solver (scipy)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from rfjax import solvers


def _problem(seed, n=40, r=6):
  rng = np.random.default_rng(seed)
  phi = rng.normal(size=(n, r))
  y = np.sign(phi @ rng.normal(size=r) + 0.8 * rng.normal(size=n))
  return phi, y


def _scipy_min(phi, y, radius):
  """min over the ball of the mean hinge, as an LP-like SLSQP problem in (u, slack)."""
  n, r = phi.shape
  obj = lambda v: v[r:].mean()
  cons = [dict(type="ineq", fun=lambda v: v[r:] - (1 - y * (phi @ v[:r]))),
          dict(type="ineq", fun=lambda v: v[r:]),
          dict(type="ineq", fun=lambda v: radius ** 2 - v[:r] @ v[:r])]
  v0 = np.concatenate([np.zeros(r), np.ones(n)])
  res = optimize.minimize(obj, v0, constraints=cons, method="SLSQP",
                          options=dict(maxiter=2000, ftol=1e-12))
  u = res.x[:r] * min(1.0, radius / np.linalg.norm(res.x[:r]))
  return np.mean(np.maximum(0, 1 - y * (phi @ u)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_certificate_brackets_the_minimum_and_closes_at_the_fit(seed):
  with jax.enable_x64(True):
    phi, y = _problem(seed)
    radii = np.array([0.2, 1.0, 5.0])
    fit = solvers.hinge_ball_fit(jnp.asarray(phi), jnp.asarray(y), radii, mu=1e-3,
                                 num_iters=20000)
    cert = solvers.hinge_ball_certificate(jnp.asarray(phi), jnp.asarray(y), fit.u_Br, radii,
                                          1e-3)
    for b, rad in enumerate(radii):
      best = _scipy_min(phi, y, rad)
      assert float(cert.lower_B[b]) <= best + 1e-6           # a lower bound on the minimum
      assert float(cert.hinge_B[b]) >= best - 1e-6           # the fit is feasible
      np.testing.assert_allclose(cert.hinge_B[b], fit.hinge_B[b], rtol=1e-10)
      assert float(cert.gap_B[b]) <= 2e-3                    # and the bracket is tight
    # Random feasible points: the lower bound of their certificate stays below the minimum.
    rng = np.random.default_rng(seed + 10)
    u = rng.normal(size=(3, phi.shape[1]))
    u *= (radii / np.linalg.norm(u, axis=1))[:, None] * 0.9
    c2 = solvers.hinge_ball_certificate(jnp.asarray(phi), jnp.asarray(y), jnp.asarray(u),
                                        radii, 0.1)
    for b, rad in enumerate(radii):
      assert float(c2.lower_B[b]) <= _scipy_min(phi, y, rad) + 1e-6
      np.testing.assert_allclose(c2.hinge_B[b], np.mean(np.maximum(0, 1 - y * (phi @ u[b]))),
                                 rtol=1e-12)
