"""Tests for rfjax.targets: sample-mode functions and exact moments vs Monte Carlo."""
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose

from rfjax import psi, targets
from rfjax.features import RidgeForm

_N = 1_000_000


def _check_mc(t, form, rng):
  d = t.w_d.shape[0]
  x = rng.standard_normal((_N, d))
  y = np.asarray(t.fn(jnp.asarray(x)))
  se = lambda v: 5 * v.std() / np.sqrt(_N) + 1e-14
  assert abs(float(targets.target_mean(t)) - y.mean()) < se(y)
  assert abs(float(targets.target_second_moment(t)) - (y * y).mean()) < se(y * y)
  z = x @ np.asarray(form.w_dr) + np.asarray(form.b_r)
  phi = np.maximum(z, 0) if form.activation == "relu" else z
  c = np.asarray(targets.target_cross(form, t))
  fy = phi * y[:, None]
  assert np.all(np.abs(c - fy.mean(0)) < 5 * fy.std(0) / np.sqrt(_N) + 1e-14)


@pytest.mark.parametrize("act", ["relu", "linear"])
def test_exact_vs_mc(act):
  rng = np.random.default_rng(0 if act == "relu" else 1)
  d = 3
  w_dr = rng.normal(size=(d, 4))
  form = RidgeForm(jnp.asarray(w_dr), jnp.asarray(rng.normal(size=4)), act)
  w = rng.normal(size=d)
  p = psi.psi_params(d)
  w_psi = w / np.linalg.norm(w) * p.R
  for t in (targets.linear(w), targets.relu_neuron(w, -0.4),
            targets.psi_target(w_psi, p.m), targets.hard_neuron(w / np.linalg.norm(w) / 10, 1, 2)):
    _check_mc(t, form, rng)


def test_sample_functions_and_hard_neuron():
  x = jnp.asarray(np.random.default_rng(2).standard_normal((50, 2)))
  w = jnp.array([0.6, -0.8])
  assert_allclose(targets.linear(w).fn(x), x @ w, rtol=1e-15)
  assert_allclose(targets.relu_neuron(w, 0.2).fn(x), np.maximum(x @ w + 0.2, 0), rtol=1e-15)
  assert_allclose(targets.psi_target(w * 2, 1).fn(x), psi.psi(x @ (w * 2), 1), rtol=1e-15)
  const, coef, off = psi.relu_decomposition(1)
  t = targets.hard_neuron(w, 1, 3)
  a = 6
  assert t.name == "relu_neuron" and t.b == pytest.approx(-a * off[3])
  assert_allclose(t.fn(x), a * np.maximum(x @ w - off[3], 0), rtol=1e-13, atol=1e-13)
  # ψ from the hard neurons: const + Σ coef_j neuron_j / a (docs/theory.md, 'Limits of random
  # features').
  y = const + sum(c * targets.hard_neuron(w, 1, j).fn(x) / a for j, c in enumerate(coef))
  assert_allclose(y, psi.psi(x @ w, 1), atol=1e-13)
