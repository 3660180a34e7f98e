"""A plain name -> item registry; registering a taken name replaces it with a warning.

Replacing (rather than refusing) lets a notebook cell that registers a component run twice.
"""
from __future__ import annotations

import warnings
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryWarning(UserWarning):
  """A registered name was registered again and replaced."""


class Registry(Generic[T]):
  """Maps names to components (feature maps, experiments, ...)."""

  def __init__(self, kind: str):
    self.kind = kind
    self._items: dict[str, T] = {}

  def register(self, name: str, item: T | None = None) -> Any:
    """Registers `item` under `name`; used bare or as a decorator."""
    if item is None:
      return lambda it: self.register(name, it)
    if not isinstance(name, str) or not name:
      raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
    if name in self._items and self._items[name] is not item:
      warnings.warn(f"{self.kind} {name!r} was already registered; replacing it",
                    RegistryWarning, stacklevel=2)
    self._items[name] = item
    return item

  def unregister(self, name: str) -> None:
    """Removes `name` (for tests that register temporary components)."""
    self._items.pop(name, None)

  def names(self) -> list[str]:
    return sorted(self._items)

  def __contains__(self, name: object) -> bool:
    return name in self._items

  def get(self, name: str) -> T:
    if name not in self._items:
      raise KeyError(f"unknown {self.kind} {name!r}; known: {self.names()}")
    return self._items[name]
