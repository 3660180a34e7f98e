"""JAX's persistent compilation cache: on by default in the user cache directory, moved by
--compilation_cache_dir, off with --nocompilation_cache; a program compiled once is written
there, and a second process loads it instead of compiling (JAX's cache-hit counter)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Configures the cache like `rfjax` does, compiles one program, prints JAX's count of
# persistent-cache hits and misses (jax's monitoring events).
PROGRAM = r"""
import sys, jax, jax.numpy as jnp
from jax import monitoring
from rfjax import main
events = []
monitoring.register_event_listener(lambda name, **kw: events.append(name))
enabled, directory = sys.argv[1] == "on", sys.argv[2]
print("dir", main.configure_compilation_cache(enabled, directory))
f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T + 0.123456)
f(jnp.ones((64, 64))).block_until_ready()
print("hits", sum("cache_hits" in e for e in events))
print("misses", sum("cache_misses" in e for e in events))
"""


def _compile(enabled, directory, env=None):
  env = dict(os.environ if env is None else env, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  res = subprocess.run([sys.executable, "-c", PROGRAM, "on" if enabled else "off",
                        directory], capture_output=True, text=True, env=env)
  assert res.returncode == 0, res.stderr[-2000:]
  return dict(line.split(" ", 1) for line in res.stdout.splitlines())


def test_second_process_loads_the_program_from_the_cache(tmp_path):
  cache = str(tmp_path / "cache")
  first = _compile(True, cache)
  assert first["dir"] == cache and first["hits"] == "0"
  assert os.listdir(cache)                          # written
  second = _compile(True, cache)
  assert int(second["hits"]) >= 1 and second["misses"] == "0"


def test_off_writes_nothing(tmp_path):
  env = dict(os.environ, RFJAX_CACHE_DIR=str(tmp_path / "default"))
  out = _compile(False, str(tmp_path / "cache"), env=env)
  assert out["dir"] == "None" and out["hits"] == "0"
  assert not (tmp_path / "cache").exists() and not (tmp_path / "default").exists()


def test_default_directory_is_the_user_cache(tmp_path, monkeypatch):
  from rfjax import main
  monkeypatch.delenv("RFJAX_CACHE_DIR", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert main.default_cache_dir() == str(tmp_path / "rfjax" / "jax_compilation_cache")
  monkeypatch.setenv("RFJAX_CACHE_DIR", "/elsewhere")
  assert main.default_cache_dir() == "/elsewhere"
  out = _compile(True, "", env=dict(os.environ, RFJAX_CACHE_DIR=str(tmp_path / "env")))
  assert out["dir"] == str(tmp_path / "env") and os.listdir(tmp_path / "env")


@pytest.mark.parametrize("flag", [pytest.param("--nocompilation_cache", marks=pytest.mark.slow),
                                  "--compilation_cache_dir={}"])
def test_command_line_flags(tmp_path, flag):
  cache = tmp_path / "cache"
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
             RFJAX_CACHE_DIR=str(tmp_path / "default"))
  res = subprocess.run([sys.executable, "-m", "rfjax.main",
                        "--config=" + os.path.join(ROOT, "configs", "linear_rf.py") + ":smoke",
                        "--config.ds=(4,)", "--config.ratios=(0.5,)", "--config.tail_ds=(4,)",
                        "--config.num_seeds=8", "--config.tail_seeds=8",
                        f"--workdir={tmp_path / 'w'}", flag.format(cache)],
                       capture_output=True, text=True, env=env)
  assert res.returncode == 0, res.stderr[-2000:]
  if flag.startswith("--no"):
    assert "compilation cache: off" in res.stderr and not cache.exists()
  else:
    assert f"compilation cache: {cache}" in res.stderr and os.listdir(cache)
  assert not (tmp_path / "default").exists()
