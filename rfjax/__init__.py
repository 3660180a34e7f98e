"""rfjax: the power and limitations of random features, in JAX."""
from rfjax import registry
from rfjax import validation

__version__ = "0.1.0"
