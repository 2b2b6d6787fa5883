"""Training on the real MNIST copy runs at the configured thread count."""
import torch

from mnistgan.config import from_preset


def test_training_uses_the_configured_count(tiny_config, mnist_dir):
    from mnistgan.callbacks import Callback
    from mnistgan.data import DeviceData, load_split
    from mnistgan.training.trainer import Trainer

    seen = set()

    class Watch(Callback):
        def on_step(self, trainer):
            seen.add(torch.get_num_threads())

    images, labels = load_split("mnist", "train", mnist_dir, download=False, progress=False)
    config = from_preset("seed", {**tiny_config.to_dict(), "threads": "1", "epochs": 1})
    before = torch.get_num_threads()
    Trainer(config, "cpu").fit(DeviceData(images[:1000], labels[:1000], torch.device("cpu")), [Watch()])
    assert seen == {1} and torch.get_num_threads() == before
