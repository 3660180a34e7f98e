"""Quiet runs: one progress line per cell with an ETA; orbax's INFO logs hidden unless
--verbosity >= 1."""
import logging as std_logging

from absl import logging

from rfjax import main
from rfjax import runner


def _record(path, level=std_logging.INFO):
  return std_logging.LogRecord("absl", level, path, 1, "saved step %d", (3,), None)


def test_orbax_info_hidden_at_verbosity_0_and_back_at_1():
  f = main._QuietLibraries()
  orbax = "/venv/site-packages/orbax/checkpoint/checkpoint_manager.py"
  old = logging.get_verbosity()
  try:
    logging.set_verbosity(0)
    assert not f.filter(_record(orbax))
    assert f.filter(_record(orbax, std_logging.WARNING))          # warnings always shown
    assert f.filter(_record("/work/rfjax/runner.py"))              # our progress lines
    logging.set_verbosity(1)
    assert f.filter(_record(orbax))
  finally:
    logging.set_verbosity(old)


def test_progress_line_has_position_and_eta():
  line = runner.progress_line("psi_correlation", 3, 10, "psi_correlation/d=4", 2.04, 65.0,
                              computed=2, to_compute=9)
  assert line == ("psi_correlation [3/10] psi_correlation/d=4 done in 2.0s, elapsed 1m05s, "
                  "ETA 3m48s")          # 65 s / 2 cells × 7 cells left = 227.5 s
  assert runner.progress_line("e", 1, 1, "e/x", 1.0, 1.0, 1, 1).endswith("ETA 0s")
