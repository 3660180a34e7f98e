"""Prop. 4.1: best fit of <w*, x> by r random linear features, against 1 − r/d.

rfjax --config=configs/linear_rf.py --workdir=runs/linear_rf
rfjax --config=configs/linear_rf.py:smoke --workdir=/tmp/smoke
"""
import ml_collections as mlc


def get_config(variant: str = "") -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.experiment = "linear_rf"
  c.seed = 0
  c.feature = "linear_sphere"          # any ridge feature map with linear activation
  c.ds = (16, 32, 64, 128)
  c.ratios = (0.125, 0.25, 0.5, 0.75)  # r / d
  c.num_seeds = 256
  c.threshold = 0.25                   # P(error < threshold) at r = d / 2
  c.tail_ds = (4, 8, 16, 24, 32, 48)
  c.tail_seeds = 8192
  c.max_mean_z = 3.0                   # verdict: |mean − (1 − r/d)| ≤ this many s.e. per cell
  c.max_tail_z = 3.0                   # verdict: tail fraction within this many binomial s.e.
  # Any other registered maps, fitted to the same target beside it (reported, not deciding).
  c.other_features = ()
  c.other_seeds = 16
  c.other_mc_n = 2**16                 # sample-mode maps: Monte Carlo inputs per fit
  c.other_mc_chunk = 2**12
  if variant == "smoke":
    c.ds, c.ratios, c.num_seeds = (8,), (0.25, 0.5), 64
    c.tail_ds, c.tail_seeds = (4,), 256
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; known: smoke")
  return c
