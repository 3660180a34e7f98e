"""Checks of user input that fail early with one line naming the field."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class ConfigError(ValueError):
  """Bad user input: `field` and what is allowed. main exits with status 2."""

  def __init__(self, field: str, message: str):
    super().__init__(f"{field}: {message}")
    self.field = field


def _as_list(value: Any) -> list[Any]:
  if isinstance(value, (list, tuple)):
    return list(value)
  return [value]


def positive_ints(field: str, value: Any, *, minimum: int = 1) -> list[int]:
  """Each entry of `value` (a number or a list) must be an int >= minimum."""
  out = []
  for v in _as_list(value):
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
      raise ConfigError(field, f"must be integer(s) >= {minimum}, got {value!r}")
    out.append(v)
  if not out:
    raise ConfigError(field, "must not be empty")
  return out


def positive_floats(field: str, value: Any, *, allow_zero: bool = False) -> list[float]:
  """Each entry of `value` must be a finite number > 0 (>= 0 with allow_zero)."""
  out = []
  for v in _as_list(value):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    ok = ok and v == v and abs(v) != float("inf") and (v >= 0 if allow_zero else v > 0)
    if not ok:
      bound = ">= 0" if allow_zero else "> 0"
      raise ConfigError(field, f"must be finite number(s) {bound}, got {value!r}")
    out.append(float(v))
  if not out:
    raise ConfigError(field, "must not be empty")
  return out


def one_of(field: str, value: Any, allowed: Iterable[str]) -> list[str]:
  """Each entry of `value` must be one of `allowed`."""
  allowed = list(allowed)
  out = []
  for v in _as_list(value):
    if v not in allowed:
      raise ConfigError(field, f"unknown {v!r}; allowed: {', '.join(allowed)}")
    out.append(v)
  if not out:
    raise ConfigError(field, "must not be empty")
  return out


def fractions(field: str, value: Sequence[Any], *, low: float, high: float) -> list[float]:
  """Each entry must lie in the open interval (low, high)."""
  vals = positive_floats(field, value, allow_zero=True)
  for v in vals:
    if not low < v < high:
      raise ConfigError(field, f"entries must lie in ({low}, {high}), got {value!r}")
  return vals
