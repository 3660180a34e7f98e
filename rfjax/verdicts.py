"""Verdicts: falsifiable tests of a quoted statement of the paper.

A verdict is "holds", "fails" or "inconclusive". Its criteria are config fields fixed
before a run (the paper's values by default), never moved after seeing a result. Too
little data (unresolved points, nothing reached, fewer than three points for a rate) is
"inconclusive", never "holds". Every summary carries, beside the verdict, what result
would have made it fail (`would_fail_if`) and how the run departs from the theorem's
regime (`departures`), in words; `holds` is kept as `verdict == "holds"`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

Verdict = Literal["holds", "fails", "inconclusive"]
VERDICTS: tuple[str, ...] = ("holds", "fails", "inconclusive")


def check(verdict: str) -> str:
  """`verdict` itself; ValueError unless it is one of VERDICTS."""
  if verdict not in VERDICTS:
    raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
  return verdict


def judge(ok: bool | None) -> Verdict:
  """True -> holds, False -> fails, None (could not be decided) -> inconclusive."""
  if ok is None:
    return "inconclusive"
  return "holds" if ok else "fails"


def combine(verdicts: Iterable[str]) -> Verdict:
  """One verdict from several parts: any fails -> fails; else any inconclusive (or no part
  at all) -> inconclusive; else holds."""
  vs = [check(v) for v in verdicts]
  if "fails" in vs:
    return "fails"
  if not vs or "inconclusive" in vs:
    return "inconclusive"
  return "holds"


def fields(verdict: str, *, would_fail_if: str, departures: str = "",
           reasons: Sequence[str] = ()) -> dict[str, Any]:
  """The verdict part of a summary: verdict, holds (= verdict == holds), would_fail_if,
  departures and the reasons behind a fails / inconclusive, as plain JSON values."""
  check(verdict)
  if not would_fail_if:
    raise ValueError("a verdict must say what result would have made it fail")
  return dict(verdict=verdict, holds=verdict == "holds", would_fail_if=would_fail_if,
              departures=departures, verdict_reasons=list(reasons))
