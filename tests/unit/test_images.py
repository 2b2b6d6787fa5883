"""images: tiling, the grid row/diagonal used by the progress sheet, uint8 conversion."""
import numpy as np
import torch
from PIL import Image

from mnistgan import images


def test_to_uint8_rounds_and_clips():
    x = torch.tensor([-0.5, 0.0, 0.5, 1.0, 2.0] + [0.0] * 779).view(1, 1, 28, 28)
    u = images.to_uint8(x)
    assert u.shape == (1, 1, 28, 28) and u.dtype == np.uint8
    assert u.reshape(-1)[:5].tolist() == [0, 0, 128, 255, 255]


def test_grid_layout_and_row_extraction(tmp_path):
    tiles = np.stack([np.full((1, 28, 28), 10 * i + j, np.uint8) for i in range(10) for j in range(10)])
    g = images.grid(tiles, nrow=10)
    assert g.shape == (10 * 30 + 2, 10 * 30 + 2) and g[0, 0] == 0 and g[2, 2] == 0 and g[2, 32] == 1
    first = images.grid_row(g)
    diag = images.grid_row(g, diagonal=True)
    assert first.shape == (10, 1, 28, 28) and [int(t[0, 0, 0]) for t in first] == list(range(10))
    assert [int(t[0, 0, 0]) for t in diag] == [11 * i for i in range(10)]
    images.save_grid(tmp_path / "g.png", tiles)
    assert np.array_equal(images.read_picture(tmp_path / "g.png"), g)
    images.save_grid(tmp_path / "g2.png", tiles[:3], nrow=3, scale=2)
    with Image.open(tmp_path / "g2.png") as img:
        assert img.size == (2 * (3 * 30 + 2), 2 * 32)
