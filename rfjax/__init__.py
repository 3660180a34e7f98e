"""rfjax: the power and limitations of random features, in JAX.

Importing the package fills the library registries (feature maps, activations,
samplers); `rfjax.experiments` holds the experiments and fills their registry.
"""
from rfjax import registry
from rfjax import validation
from rfjax import distributions
from rfjax import activations
from rfjax import gaussian
from rfjax import psi
from rfjax import features
from rfjax import targets
from rfjax import linalg
from rfjax import solvers
from rfjax import legendre
from rfjax import networks
from rfjax import training
from rfjax import sweep
from rfjax import results

__version__ = "0.1.0"
