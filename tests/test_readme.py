"""The README's example feature map runs as written and its kernel is right."""
import pathlib
import re

import jax
import numpy as np

from rfjax import features

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_feature_map_example():
  blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
  example = next(b for b in blocks if "features.register(" in b)
  name = re.search(r'features.register\("(\w+)"', example).group(1)
  try:
    exec(compile(example, "README.md", "exec"), {})
    fm = features.get(name)
    x = jax.random.normal(jax.random.key(1), (3, 4))
    phi = fm.apply(fm.init(jax.random.key(0), 4, 200_000), x)
    mc = np.asarray(phi @ phi.T) / phi.shape[1]
    np.testing.assert_allclose(mc, np.asarray(fm.kernel(x, x)), rtol=0.05, atol=0.05)
  finally:
    features.FEATURE_MAPS.unregister(name)
