"""The figures of linear_rf, psi_correlation and neuron_gd draw from their smoke rows and
summaries (relu_neuron_rf's is drawn in tests/test_relu_neuron_rf.py)."""
import jax
import pytest
from PIL import Image

from rfjax import experiments
from rfjax import plots


@pytest.mark.parametrize("name, over", [
    ("linear_rf", dict(other_features=("relu_sphere", "rff"), other_seeds=3,
                       other_mc_n=2**12, other_mc_chunk=2**11)),
    ("psi_correlation", {}),
    ("neuron_gd", {}),
])
def test_figure_draws_from_smoke_rows(name, over, smoke_config, tmp_path):
  config = smoke_config(name)
  config.update(over)
  rows = experiments.run(name, config, jax.random.key(config.seed))
  summary = dict(experiments.get(name).summarize(config, rows), experiment=name)
  path = tmp_path / f"{name}.png"
  plots.save(name, config, rows, summary, str(path))
  with Image.open(path) as im:
    assert im.size[0] > 400 and im.size[1] > 200
  if name == "linear_rf":
    assert {o["feature"] for o in summary["other_features"]} == {"relu_sphere", "rff"}
    assert {o["mode"] for o in summary["other_features"]} == {"exact", "sample"}
