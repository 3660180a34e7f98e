"""rfjax: the power and limitations of random features, in JAX."""
import setuptools

setuptools.setup(
    name="rfjax",
    version="0.1.0",
    description=("Experiments for 'On the Power and Limitations of Random "
                 "Features for Understanding Neural Networks' in JAX."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["rfjax", "rfjax.*"]),
    install_requires=[
        # Tested with jax 0.10.x (Python 3.11) and 0.11.x (Python 3.12).
        "jax>=0.10,<0.13",
        "jaxlib>=0.10,<0.13",
        "optax>=0.2.4,<0.3",
        "flax>=0.10,<0.13",
        "orbax-checkpoint>=0.12,<0.13",   # polynomial_sgd's training checkpoints
        "chex>=0.1.88,<0.2",
        "absl-py>=2.1,<3",
        "ml_collections>=0.1.1,<2",
        "numpy>=1.26,<3",
        "scipy>=1.12,<2",
        "matplotlib>=3.8,<4",
        "threadpoolctl>=3,<4",            # boxqp's factorisations on one BLAS thread
        "etils[epath]>=1.5,<2",           # workdirs on local disks and in buckets
    ],
    extras_require={
        # Workdirs in Google Cloud Storage (--workdir=gs://bucket/dir), through fsspec.
        "cloud": ["gcsfs>=2024.2"],
        # Peers of benchmarks/run.py; the test extra carries them so that the benchmark
        # test really compares rfjax against them.
        "bench": ["torch==2.13.0", "scikit-learn>=1.4,<2", "quadprog>=0.1.11,<0.2"],
        # The API reference (scripts/build_docs.py).
        "docs": ["pdoc>=16,<17"],
        # quadprog: an independent exact QP solver that the box-fit tests check against;
        # pdoc builds the API reference and nbclient runs the example notebook in the tests.
        "test": ["pytest>=8,<10", "torch==2.13.0", "scikit-learn>=1.4,<2",
                 "quadprog>=0.1.11,<0.2", "pdoc>=16,<17", "nbclient>=0.10,<1",
                 "nbformat>=5.9,<6", "ipykernel>=6.29,<8"],
    },
    entry_points={"console_scripts": ["rfjax=rfjax.main:entry_point"]},
)
