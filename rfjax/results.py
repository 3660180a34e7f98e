"""Result rows as JSONL: atomic writes per grid cell, resume, atomic rewrites, on a local
disk or in a bucket.

Every row carries `key` (its cell plus seed, unique in the file), `cell` (the grid
cell it belongs to) and `cell_rows` (how many rows that cell wrote).

Paths: every path goes through `as_path` (an `etils.epath.Path`): a local path, or a
URI such as `gs://bucket/dir` (object stores through fsspec; `gcsfs` for `gs://`).

- On a local disk a cell's rows are appended to `results.jsonl` with one `write` and an
  fsync; a run killed mid-write leaves at most a torn tail, which `load_rows` drops
  together with any incomplete cell. Other files are written to a temporary file and
  renamed.
- An object store has neither append nor rename: each cell's rows are one object,
  `cells/<hash of the cell key>.jsonl` next to `results.jsonl`, which appears whole or not
  at all. `load_rows` reads `results.jsonl` and then every cell object whose cell it does
  not already hold (so a cell is counted once even if a kill fell between writing the
  merged file and removing the objects); `consolidate` merges them into `results.jsonl`
  at the end of a run and removes the objects. Other files are written as one object.

Either way a resumed run recomputes exactly the missing cells, and no row is written twice.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from etils import epath

PathLike = str | os.PathLike
CELLS_DIR = "cells"         # per-cell row objects on stores without append


def is_remote(path: PathLike) -> bool:
  """True for a URI (`gs://…`, `s3://…`): an object store, not the local filesystem."""
  return "://" in os.fspath(path)


def as_path(path: PathLike) -> epath.Path:
  """`path` as an epath.Path: a URI as it is, a local path made absolute."""
  text = os.fspath(path)
  return epath.Path(text if is_remote(text) else os.path.abspath(text))


def join(path: PathLike, *parts: str) -> str:
  """`path/part/...` as text, for local paths and URIs alike."""
  return os.fspath(as_path(path).joinpath(*parts)) if is_remote(path) \
      else os.path.join(os.fspath(path), *parts)


def exists(path: PathLike) -> bool:
  return as_path(path).exists()


def read_text(path: PathLike) -> str:
  return as_path(path).read_text()


def makedirs(path: PathLike) -> None:
  """Creates a directory and its parents (object stores have no directories: a no-op
  there, but harmless)."""
  as_path(path).mkdir(parents=True, exist_ok=True)


def rmtree(path: PathLike) -> None:
  """Removes a directory tree if it exists."""
  p = as_path(path)
  if p.exists():
    p.rmtree()


def to_json(value: Any) -> Any:
  """Turns numpy / jax scalars and arrays into JSON values (NaN/inf as strings)."""
  if hasattr(value, "tolist"):
    value = value.tolist()
  if isinstance(value, float):
    if math.isnan(value):
      return "nan"
    if math.isinf(value):
      return "inf" if value > 0 else "-inf"
    return value
  if isinstance(value, Mapping):
    return {str(k): to_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_json(v) for v in value]
  return value


def dumps(row: Mapping[str, Any]) -> str:
  """One row as a canonical JSON line (sorted keys, no trailing newline)."""
  return json.dumps(to_json(row), sort_keys=True, allow_nan=False)


def cell_key(experiment: str, cell: Mapping[str, Any]) -> str:
  """A stable text key for a grid cell, e.g. 'linear_rf/d=16/r=8'."""
  parts = [f"{k}={to_json(cell[k])}" for k in sorted(cell)]
  return "/".join([experiment, *parts])


def write_atomic(path: PathLike, data: str | bytes) -> None:
  """Writes `data` to `path` so that a reader sees the old file or the new one, never a
  part: locally through a temporary file and a rename; on an object store as one object
  (an upload becomes visible whole, when it completes)."""
  if is_remote(path):
    with as_path(path).open("wb") as f:
      f.write(data.encode() if isinstance(data, str) else data)
    return
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  mode = "wb" if isinstance(data, bytes) else "w"
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, mode) as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)                      # mkstemp makes 0600 files
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def load_rows(path: PathLike) -> list[dict[str, Any]]:
  """Reads the complete cells of `path` and of its cell objects (each cell once); repairs
  `path` if a run was killed mid-write."""
  rows = _load_jsonl(path)
  have = completed_cells(rows)
  for obj in _cell_objects(path):
    cell_rows = _complete(json.loads(line) for line in obj.read_text().splitlines()
                          if line.strip())
    if cell_rows and cell_rows[0]["cell"] not in have:
      have.add(cell_rows[0]["cell"])
      rows.extend(cell_rows)
  return rows


def _complete(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
  """The rows of the cells that hold all their `cell_rows` rows."""
  rows = list(rows)
  counts: dict[str, int] = {}
  for row in rows:
    counts[row["cell"]] = counts.get(row["cell"], 0) + 1
  return [r for r in rows if counts[r["cell"]] == r["cell_rows"]]


def _load_jsonl(path: PathLike) -> list[dict[str, Any]]:
  if not exists(path):
    return []
  raw = as_path(path).read_bytes()
  lines = raw.split(b"\n")
  rows, torn = [], False
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      if i != len(lines) - 1 and any(l.strip() for l in lines[i + 1:]):
        raise ValueError(f"{path}: corrupt row on line {i + 1}") from None
      torn = True
  complete = _complete(rows)
  if torn or len(complete) != len(rows):
    write_atomic(path, "".join(dumps(r) + "\n" for r in complete))
  return complete


def _cells_dir(path: PathLike) -> epath.Path:
  return as_path(path).parent / CELLS_DIR


def _cell_objects(path: PathLike) -> list[epath.Path]:
  directory = _cells_dir(path)
  if not directory.exists():
    return []
  return sorted((p for p in directory.iterdir() if p.name.endswith(".jsonl")),
                key=lambda p: p.name)


def cell_object(path: PathLike, cell: str) -> epath.Path:
  """The object that holds cell `cell`'s rows of `path` on a store without append."""
  return _cells_dir(path) / (hashlib.sha256(cell.encode()).hexdigest()[:24] + ".jsonl")


def append_cell(path: PathLike, cell: str, rows: Sequence[Mapping[str, Any]]) -> list[dict]:
  """Adds one cell's rows in a single write (an append locally, one object on an object
  store); returns the rows as written."""
  out = []
  for row in rows:
    row = dict(row)
    row["cell"], row["cell_rows"] = cell, len(rows)
    out.append(json.loads(dumps(row)))
  data = "".join(dumps(r) + "\n" for r in out).encode()
  if is_remote(path):
    write_atomic(cell_object(path, cell), data)
    return out
  fd = os.open(os.fspath(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    written = os.write(fd, data)
    while written < len(data):
      written += os.write(fd, data[written:])
    os.fsync(fd)
  finally:
    os.close(fd)
  return out


def consolidate(path: PathLike, rows: Sequence[Mapping[str, Any]]) -> None:
  """Makes `path` hold exactly `rows` (as written, in the given order) and removes the cell
  objects, if any. `rows` must be every row that `load_rows(path)` returns. The merged file
  is written before any object is removed, so a kill in between loses nothing, and
  `load_rows` counts each cell once."""
  objects = _cell_objects(path)
  if not objects:
    return
  write_atomic(path, "".join(dumps(r) + "\n" for r in rows))
  for obj in objects:
    obj.unlink(missing_ok=True)


def completed_cells(rows: Iterable[Mapping[str, Any]]) -> set[str]:
  """The cells present in `rows` (load_rows keeps complete cells only)."""
  return {r["cell"] for r in rows}


def to_float(value: Any) -> float:
  """Reads back a number written by `dumps` (which spells NaN/inf as strings)."""
  return float(value)
