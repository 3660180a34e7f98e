"""Result rows as JSONL: atomic appends per grid cell, resume, atomic rewrites.

Every row carries `key` (its cell plus seed, unique in the file), `cell` (the grid
cell it belongs to) and `cell_rows` (how many rows that cell wrote). A cell's rows
are appended with one `write` and an fsync; a run killed mid-write leaves at most a
torn tail, which `load_rows` drops together with any incomplete cell, so a resumed
run recomputes exactly the missing cells.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


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


def write_atomic(path: str, data: str | bytes) -> None:
  """Writes `data` to `path` through a temporary file and a rename."""
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


def load_rows(path: str) -> list[dict[str, Any]]:
  """Reads complete cells from `path`; repairs the file if a run was killed mid-write."""
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    raw = f.read()
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
  counts: dict[str, int] = {}
  for row in rows:
    counts[row["cell"]] = counts.get(row["cell"], 0) + 1
  complete = [r for r in rows if counts[r["cell"]] == r["cell_rows"]]
  if torn or len(complete) != len(rows):
    write_atomic(path, "".join(dumps(r) + "\n" for r in complete))
  return complete


def append_cell(path: str, cell: str, rows: Sequence[Mapping[str, Any]]) -> list[dict]:
  """Appends one cell's rows in a single write; returns the rows as written."""
  out = []
  for row in rows:
    row = dict(row)
    row["cell"], row["cell_rows"] = cell, len(rows)
    out.append(json.loads(dumps(row)))
  data = "".join(dumps(r) + "\n" for r in out).encode()
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    written = os.write(fd, data)
    while written < len(data):
      written += os.write(fd, data[written:])
    os.fsync(fd)
  finally:
    os.close(fd)
  return out


def completed_cells(rows: Iterable[Mapping[str, Any]]) -> set[str]:
  """The cells present in `rows` (load_rows keeps complete cells only)."""
  return {r["cell"] for r in rows}


def to_float(value: Any) -> float:
  """Reads back a number written by `dumps` (which spells NaN/inf as strings)."""
  return float(value)
