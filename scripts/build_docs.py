"""Builds rfjax's API reference (HTML, from the docstrings) with pdoc; fails on any warning.

  python scripts/build_docs.py [--out docs/api]

Writes DIR/index.html and one page per module (docs/api/ is git-ignored). Any warning raised
while importing the modules or rendering them (a docstring pdoc cannot parse, an annotation it
cannot resolve) is printed and the exit status is 1, so a clean exit means a clean reference.
"""
import argparse
import importlib
import inspect
import pathlib
import pkgutil
import sys
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _namedtuple_globals(package: str) -> None:
  """Points each NamedTuple's generated __new__ at its class's module.

  Python builds a NamedTuple's __new__ in a namespace of its own, so pdoc cannot resolve the
  field annotations of a module that uses `from __future__ import annotations` (pdoc issue
  #765) and warns for every such field. The class's module is where they are defined.
  """
  pkg = importlib.import_module(package)
  mods = [pkg] + [importlib.import_module(m.name)
                  for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
  for mod in mods:
    for _, cls in inspect.getmembers(mod, inspect.isclass):
      if cls.__module__ == mod.__name__ and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        cls.__new__.__module__ = cls.__module__


def build(out: pathlib.Path, package: str = "rfjax") -> list[str]:
  """Renders `package` into `out`; returns the warnings raised on the way (as text)."""
  import pdoc  # pylint: disable=import-outside-toplevel
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    _namedtuple_globals(package)
    pdoc.render.configure(docformat="markdown", footer_text="rfjax")
    pdoc.pdoc(package, output_directory=out)
  return [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", type=pathlib.Path, default=ROOT / "docs" / "api",
                      help="output directory (default docs/api)")
  args = parser.parse_args(argv)
  sys.path.insert(0, str(ROOT))
  found = build(args.out)
  for w in found:
    print(f"warning: {w}", file=sys.stderr)
  if found:
    print(f"{len(found)} warning(s); the reference in {args.out} is not clean", file=sys.stderr)
    return 1
  print(f"wrote {args.out / 'index.html'}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
