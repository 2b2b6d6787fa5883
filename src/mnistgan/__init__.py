"""mnistgan: GANs that forge handwritten digits.

The generator (the counterfeiter) forges digits from noise; the discriminator (the police
officer) tells forgeries from real MNIST digits; each improves by competing with the other.

    import mnistgan
    run = mnistgan.train(preset="cdcgan", epochs=5, out="runs/c")
    x = mnistgan.load("runs/c").sample(16, digit=7, seed=0)
    scores = mnistgan.evaluate(x, metrics=["fid", "coverage"])
"""
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, MnistganError, RunError

__version__ = "0.1.0"
__all__ = ["configure", "train", "load", "evaluate", "Generator", "Run", "MnistganError", "ConfigError", "DataError",
           "CheckpointError", "RunError", "DivergenceError", "__version__"]
_API = {"configure", "train", "load", "evaluate", "Generator", "Run"}


def __getattr__(name: str):
    """The API's names, imported on first use (so that `import mnistgan` stays light)."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mnistgan' has no attribute {name!r}")
