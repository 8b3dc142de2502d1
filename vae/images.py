"""Images in and out of the models: display scaling now; upload and drawing preprocessing to come.

Images inside the library are float tensors (N, C, H, W) or (C, H, W) in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid


def to_display_image(image: torch.Tensor, width: int = 112) -> Image.Image:
    """One image (C, H, W) in [0, 1] as a Pillow image `width` pixels wide, scaled with no blur."""
    array = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    array = array.squeeze(0).numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    picture = Image.fromarray(np.ascontiguousarray(array))
    height = max(1, round(width * picture.height / picture.width))
    return picture.resize((width, height), Image.Resampling.NEAREST)


def image_grid(images: torch.Tensor, columns: int = 8, width: int = 640) -> Image.Image:
    """Images (N, C, H, W) in [0, 1] tiled into one picture `width` pixels wide, scaled with no blur."""
    grid = make_grid(images.detach().cpu().clamp(0, 1), nrow=columns, padding=1, pad_value=1.0)
    return to_display_image(grid, width)
