"""A stand-in for Google Cloud Storage in tests: `gs://bucket/key` objects kept under a
local directory, with an object store's semantics where they differ from a disk.

- No append: opening an object in mode "a" raises (as gcsfs does).
- An object appears whole when its writer closes it, or not at all: a writer killed
  mid-upload leaves nothing (the bytes go to a hidden staging file first).
- Every operation is counted in `CALLS` (mode "w"/"r" opens, removals), so tests can see
  what a run did to the store.

`install(root)` registers it for the `gs` and `gcs` protocols of fsspec, which is what
etils.epath uses for `gs://` paths when TensorFlow is absent. A subprocess installs it with
`python -c "import fake_bucket; fake_bucket.install(ROOT); ..."` (tests/ on sys.path).
"""
from __future__ import annotations

import collections
import io
import os
import tempfile

import fsspec
from fsspec.implementations.local import LocalFileSystem

ROOT_ENV = "RFJAX_FAKE_BUCKET_ROOT"
CALLS: collections.Counter = collections.Counter()


def _root() -> str:
  return os.environ[ROOT_ENV]


class _Upload(io.BytesIO):
  """A write handle whose bytes become the object only on close."""

  def __init__(self, local_path: str, text: bool):
    super().__init__()
    self._local, self._text = local_path, text

  def write(self, data):  # noqa: D102
    return super().write(data.encode() if isinstance(data, str) else data)

  def close(self):  # noqa: D102
    if not self.closed:
      os.makedirs(os.path.dirname(self._local), exist_ok=True)
      fd, tmp = tempfile.mkstemp(dir=_root(), prefix=".upload-")
      with os.fdopen(fd, "wb") as f:
        f.write(self.getvalue())
      os.replace(tmp, self._local)
    super().close()


class FakeGCS(LocalFileSystem):
  """fsspec filesystem for gs:// URIs over a local directory (see the module docstring)."""

  protocol = ("gs", "gcs")
  root_marker = ""

  def __init__(self, *args, finalize_on_close=None, **kwargs):  # noqa: ARG002 - gcsfs's
    super().__init__(auto_mkdir=True)

  @classmethod
  def _strip_protocol(cls, path):
    path = os.fspath(path)
    for prefix in ("gs://", "gcs://"):
      if path.startswith(prefix):
        return os.path.join(_root(), path[len(prefix):]).rstrip("/")
    return path.rstrip("/") or "/"

  def _open(self, path, mode="rb", **kwargs):
    local = self._strip_protocol(path)
    if "a" in mode:
      CALLS["append"] += 1
      raise NotImplementedError("object stores have no append")
    if "w" in mode:
      CALLS["write"] += 1
      return _Upload(local, "b" not in mode)
    CALLS["read"] += 1
    return super()._open(local, mode=mode, **kwargs)

  def rm(self, path, recursive=False, maxdepth=None):
    CALLS["rm"] += 1
    return super().rm(self._strip_protocol(path), recursive=recursive, maxdepth=maxdepth)

  def mv(self, *args, **kwargs):
    CALLS["rename"] += 1
    return super().mv(*args, **kwargs)


def install(root: str) -> None:
  """Makes gs:// URIs resolve to objects under the local directory `root`."""
  os.makedirs(root, exist_ok=True)
  os.environ[ROOT_ENV] = os.path.abspath(root)
  for protocol in ("gs", "gcs"):
    fsspec.register_implementation(protocol, FakeGCS, clobber=True)
