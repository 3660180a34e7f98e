"""Result rows: atomic cell appends, torn tails, incomplete cells, stable keys."""
import json
import os

import pytest

from rfjax import results


def _rows(n, **extra):
  return [dict(seed=s, value=float(s) / 3, **extra) for s in range(n)]


def test_append_and_load_round_trip(tmp_path):
  path = str(tmp_path / "r.jsonl")
  results.append_cell(path, "e/d=1", _rows(3, d=1))
  results.append_cell(path, "e/d=2", _rows(2, d=2))
  rows = results.load_rows(path)
  assert [(r["cell"], r["seed"]) for r in rows] == [
      ("e/d=1", 0), ("e/d=1", 1), ("e/d=1", 2), ("e/d=2", 0), ("e/d=2", 1)]
  assert all(r["cell_rows"] == (3 if r["d"] == 1 else 2) for r in rows)
  assert results.completed_cells(rows) == {"e/d=1", "e/d=2"}


def test_torn_tail_and_incomplete_cell_are_dropped(tmp_path):
  path = str(tmp_path / "r.jsonl")
  results.append_cell(path, "e/d=1", _rows(2, d=1))
  good = open(path).read()
  cell2 = [json.dumps(dict(r, cell="e/d=2", cell_rows=3)) for r in _rows(3, d=2)]
  with open(path, "a") as f:            # a kill after 1.5 of 3 rows
    f.write(cell2[0] + "\n" + cell2[1][:17])
  rows = results.load_rows(path)
  assert results.completed_cells(rows) == {"e/d=1"}
  assert open(path).read() == good      # the file was repaired in place


def test_corrupt_middle_row_is_an_error(tmp_path):
  path = str(tmp_path / "r.jsonl")
  results.append_cell(path, "e/d=1", _rows(1, d=1))
  with open(path, "a") as f:
    f.write("{not json\n")
  results.append_cell(path, "e/d=2", _rows(1, d=2))
  with pytest.raises(ValueError, match="corrupt row"):
    results.load_rows(path)


def test_non_finite_values_are_written_as_strings(tmp_path):
  path = str(tmp_path / "r.jsonl")
  results.append_cell(path, "c", [dict(seed=0, x=float("nan"), y=float("inf"))])
  (row,) = results.load_rows(path)
  assert row["x"] == "nan" and row["y"] == "inf"
  assert results.to_float(row["y"]) == float("inf")


def test_cell_key_is_order_independent():
  assert results.cell_key("e", dict(r=2, d=1)) == results.cell_key("e", dict(d=1, r=2)) \
      == "e/d=1/r=2"


def test_write_atomic_replaces(tmp_path):
  path = str(tmp_path / "s.json")
  results.write_atomic(path, "a")
  results.write_atomic(path, "b")
  assert open(path).read() == "b"
  assert os.listdir(tmp_path) == ["s.json"]
