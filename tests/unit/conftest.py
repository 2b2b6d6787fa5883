"""The unit layer: synthetic data only."""
import pytest


@pytest.fixture(scope="session")
def mnist_dir():
    """Refused here: a unit test that needs the real MNIST copy belongs in tests/integration
    (or uses fake_mnist, a synthetic folder of the same shape)."""
    pytest.fail("a unit test asked for the real MNIST copy: use fake_mnist, or move it to tests/integration")
