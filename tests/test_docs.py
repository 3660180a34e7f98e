"""The API reference builds from the docstrings without a single warning, by its one command
(scripts/build_docs.py, pdoc), and that command does fail on a warning."""
import importlib.util
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_api_reference_builds_without_warnings(tmp_path):
  out = tmp_path / "api"
  proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_docs.py"),
                         f"--out={out}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=600, check=False)
  # build_docs.py records every Python warning raised while importing and rendering the
  # modules, prints each, and exits 1 if there was any.
  assert proc.returncode == 0 and "warning:" not in proc.stderr, proc.stderr[-5000:]
  for page in ("index.html", "rfjax.html", "rfjax/api.html", "rfjax/testing.html",
               "rfjax/features.html", "rfjax/experiments/psi_correlation.html"):
    assert (out / page).is_file(), page
  api = (out / "rfjax" / "api.html").read_text(encoding="utf-8")
  for name in ("psi_correlation", "fit_curve", "kernel_check", "PsiCorrelation"):
    assert f'id="{name}"' in api, name


def test_build_reports_warnings(tmp_path, monkeypatch):
  """A module whose annotation pdoc cannot resolve gives a warning, not a clean build."""
  pkg = tmp_path / "docs_probe_pkg"
  pkg.mkdir()
  (pkg / "__init__.py").write_text('"""Probe."""\n')
  (pkg / "bad.py").write_text('"""Probe."""\n\ndef f(x: "NoSuchName") -> None:\n'
                              '  """An annotation that names nothing."""\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  spec = importlib.util.spec_from_file_location("_build_docs", ROOT / "scripts" / "build_docs.py")
  build_docs = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(build_docs)
  found = build_docs.build(tmp_path / "out", package="docs_probe_pkg")
  assert any("NoSuchName" in w for w in found), found
