"""Every experiment's figure draws from its smoke rows and summary, in the default test run
(the smoke runs are shared with the other tests, see conftest), and linear_rf's from its
other-feature rows."""
import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from conftest import smoke_run
from rfjax import experiments
from rfjax import plots


def _expected_axes(name, config):
  """The panels each figure lays out for its config."""
  return dict(linear_rf=2, neuron_gd=3, psi_correlation=4, relu_neuron_rf=3,
              integral_rep=2 * max(len(config.get("ks", ())), 3),
              rf_concentration=2 * len(config.get("ds", ())), polynomial_sgd=2,
              lazy_training=3, neuron_contrast=3)[name]


def _check_png(path):
  with Image.open(path) as im:
    assert im.size[0] > 400 and im.size[1] > 200
    pixels = np.asarray(im.convert("L"))
  assert pixels.std() > 5          # something drawn, not a blank canvas


@pytest.mark.parametrize("name", experiments.names())
def test_figure_draws_from_smoke_rows(name, tmp_path):
  config, cells = smoke_run(name)
  rows = [r for _, rs in cells for r in rs]
  summary = dict(experiments.get(name).summarize(config, rows), experiment=name)
  fig = plots.draw(name, config, rows, summary)
  try:
    assert len(fig.axes) == _expected_axes(name, config)
    shown = {"holds": "holds", "fails": "FAILS"}.get(summary["verdict"], "inconclusive")
    assert fig._suptitle.get_text() == f"{name}: prediction {shown}"
    drawn = [ax for ax in fig.axes if ax.axison]
    assert drawn and all(ax.lines or ax.collections or ax.patches or ax.texts for ax in drawn)
  finally:
    path = tmp_path / f"{name}.png"
    plots.write(fig, str(path))           # writes and closes
  _check_png(path)
  assert not plt.get_fignums()


def test_save_names_an_experiment_without_a_figure(tmp_path):
  exp = experiments.get("linear_rf")
  experiments.EXPERIMENTS.register("no_figure_probe", exp._replace(figure=None))
  try:
    with pytest.raises(ValueError, match="'no_figure_probe' has no figure"):
      plots.save("no_figure_probe", None, [], {}, str(tmp_path / "x.png"))
  finally:
    experiments.EXPERIMENTS.unregister("no_figure_probe")


def test_linear_rf_figure_draws_other_features(smoke_config, tmp_path):
  config = smoke_config("linear_rf")
  config.update(dict(other_features=("relu_sphere", "rff"), other_seeds=3, other_mc_n=2**12,
                     other_mc_chunk=2**11))
  rows = experiments.run("linear_rf", config, jax.random.key(config.seed))
  summary = dict(experiments.get("linear_rf").summarize(config, rows), experiment="linear_rf")
  assert {o["feature"] for o in summary["other_features"]} == {"relu_sphere", "rff"}
  assert {o["mode"] for o in summary["other_features"]} == {"exact", "sample"}
  path = tmp_path / "linear_rf.png"
  plots.save("linear_rf", config, rows, summary, str(path))
  _check_png(path)
