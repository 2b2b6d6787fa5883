"""Small synthetic image folders for the custom-dataset tests: three filled shapes (circle,
square, triangle) drawn with Pillow at random sizes and places, as files of several formats, modes
and sizes; some dark on light (as scans are), so conversion has work to do."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle")


def draw(shape: str, rng: np.random.Generator, size: int = 28, dark_on_light: bool = False):
    from PIL import Image, ImageDraw

    bg, fg = (255, 0) if dark_on_light else (0, 255)
    img = Image.new("L", (size, size), bg)
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.22, 0.36) * size
    cx, cy = rng.uniform(0.4, 0.6, 2) * size
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return img


def make_folder(root: Path, per_class: int = 60, seed: int = 0, classes=SHAPES, splits: bool = False,
                odd_files: bool = True) -> Path:
    """root/<shape>/NNN.png (or root/train|test/<shape>/...): per_class images a class in
    mixed formats (PNG, JPEG, BMP), modes (L, RGB, RGBA) and sizes (28 to 64, some not square)."""
    rng = np.random.default_rng(seed)
    for split in (("train", "test") if splits else ("",)):
        for shape in classes:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            n = per_class if split != "test" else max(2, per_class // 5)
            for i in range(n):
                size = int(rng.choice([28, 40, 64]))
                img = draw(shape, rng, size, dark_on_light=bool(i % 4 == 3))
                kind = i % 3
                if kind == 1:
                    img = img.convert("RGB")
                    if i % 2:  # not square: padded back to square by the conversion
                        img = img.crop((0, 0, size, size - size // 8))
                    img.save(folder / f"{i:03d}.jpg", quality=95)
                elif kind == 2:
                    img.save(folder / f"{i:03d}.bmp")
                else:
                    img.save(folder / f"{i:03d}.png")
    if odd_files:
        (root / (("train/" if splits else "") + classes[0]) / "notes.txt").write_text("not an image; ignored")
    return root
