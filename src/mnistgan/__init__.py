"""mnistgan: GANs that forge handwritten digits.

The generator (the counterfeiter) forges digits from noise; the discriminator (the police
officer) tells forgeries from real MNIST digits; each improves by competing with the other.
"""
from .errors import CheckpointError, ConfigError, DataError, DivergenceError, MnistganError

__version__ = "0.1.0"
__all__ = ["MnistganError", "ConfigError", "DataError", "CheckpointError", "DivergenceError",
           "__version__"]
