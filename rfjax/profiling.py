"""Where a run's time goes: JAX's compile time, measured from JAX's own compile events.

`CompileClock` listens to the time spans JAX records while it turns a Python function into an
executable (tracing to a jaxpr, lowering to StableHLO, XLA compilation, or loading from the
persistent compilation cache) and reports the length of their union, so a trace nested in
another trace counts once. The rest of a run's wall time is computation, Python and I/O.

  with profiling.CompileClock() as clock:
    run_cell(...)
  clock.seconds()         # compile seconds inside the block
"""
from __future__ import annotations

import threading
from typing import Any

from jax import monitoring

# The compile stages' events (jax._src.dispatch: JAXPR_TRACE_EVENT, JAXPR_TO_MLIR_MODULE_EVENT,
# BACKEND_COMPILE_EVENT); the names are stable across JAX 0.4 to 0.11.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


def union_length(spans: list[tuple[float, float]]) -> float:
  """Total length of the union of intervals [start, end]."""
  total, reach = 0.0, float("-inf")
  for start, end in sorted(spans):
    if end <= reach:
      continue
    total += end - max(start, reach)
    reach = end
  return total


class CompileClock:
  """Compile seconds inside a `with` block (see the module docstring). Not reentrant."""

  def __init__(self) -> None:
    self._spans: list[tuple[float, float]] = []
    self._lock = threading.Lock()

  def _listen(self, event: str, start: float, end: float, **_: Any) -> None:
    if event in COMPILE_EVENTS:
      with self._lock:
        self._spans.append((start, end))

  def __enter__(self) -> CompileClock:
    monitoring.register_event_time_span_listener(self._listen)
    return self

  def __exit__(self, *exc: Any) -> None:
    monitoring.unregister_event_time_span_listener(self._listen)

  def seconds(self) -> float:
    """Compile seconds so far: the union of the compile events' spans."""
    with self._lock:
      return union_length(list(self._spans))


_PROCESS_CLOCK: CompileClock | None = None
_PROCESS_LOCK = threading.Lock()


def compile_seconds() -> float:
  """Compile seconds of this process since its first call (which starts the clock, so the
  first call returns 0): differences of two calls time a stretch of work."""
  global _PROCESS_CLOCK
  with _PROCESS_LOCK:
    if _PROCESS_CLOCK is None:
      _PROCESS_CLOCK = CompileClock().__enter__()
  return _PROCESS_CLOCK.seconds()
