"""`shapes`: dSprites-like pictures drawn from a full grid of known generative factors.

A beta-VAE's latent dimensions can be compared with the ground truth (shape, scale, rotation,
x, y); nothing is downloaded, and the same seed always gives the same pictures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vae.datasets.registry import Dataset, register, stratified_split

SHAPE_NAMES = ("square", "ellipse", "triangle", "heart")
SHAPE_SCALES = (0.5, 0.625, 0.75, 0.875, 1.0)  # of the largest size, a disc a quarter of the image wide
SHAPE_ROTATIONS = tuple(float(d) for d in range(0, 360, 36))  # degrees, anticlockwise
SHAPE_POSITIONS = 10  # x and y each take this many positions, one pixel apart at 28x28
SHAPES_SIZE = 28
SHAPES_COUNT = len(SHAPE_NAMES) * len(SHAPE_SCALES) * len(SHAPE_ROTATIONS) * SHAPE_POSITIONS ** 2  # 20,000
SUPERSAMPLING = 4  # samples per pixel along each axis, for anti-aliased edges


@dataclass(frozen=True)
class Shapes:
    """Generated images (N, 1, size, size) float32 in [0, 1] and their factors, each (N,)."""

    images: np.ndarray
    factors: dict[str, np.ndarray]  # shape (int index into SHAPE_NAMES), scale, rotation (degrees), x, y (pixels)


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which points (u, v) lie inside the shape; coordinates in units of its size, v pointing up.

    Every shape fits in the unit disc at every rotation, so nothing is cut off at the image edge.
    """
    if shape == 0:  # square with its corners on the unit circle
        return np.maximum(np.abs(u), np.abs(v)) <= 2 ** -0.5
    if shape == 1:  # ellipse twice as wide as tall, so its rotation shows
        return u ** 2 + (2 * v) ** 2 <= 1
    if shape == 2:  # equilateral triangle inscribed in the unit circle, pointing up; its inradius is 1/2
        inside = np.ones(u.shape, dtype=bool)
        for angle in (np.pi / 2 + np.pi, np.pi / 6, 5 * np.pi / 6):  # outward normals of the three edges
            inside &= u * np.cos(angle) + v * np.sin(angle) <= 0.5
        return inside
    # heart: the curve (x^2 + y^2 - 1)^3 = x^2 y^3, centred and shrunk into the unit disc
    x, y = u * 1.337, v * 1.337 + 0.118
    return (x ** 2 + y ** 2 - 1) ** 3 - x ** 2 * y ** 3 <= 0


def _templates(size: int, radius: float, centre: float) -> np.ndarray:
    """Every (shape, scale, rotation) drawn once at `centre`: (shapes, scales, rotations, size, size) float32."""
    k = SUPERSAMPLING
    # Sample points spread evenly inside each pixel; pixel (row, column) covers [row, row + 1) x [column, column + 1).
    offsets = (np.arange(size * k, dtype=np.float32) + 0.5) / k - centre
    dx = offsets[None, :]  # to the right
    dy = -offsets[:, None]  # up: rows count downwards
    angles = np.deg2rad(np.array(SHAPE_ROTATIONS, dtype=np.float32))[:, None, None]
    scales = np.array(SHAPE_SCALES, dtype=np.float32)[:, None, None, None] * radius
    # Rotating the shape by theta is rotating the sample points by -theta.
    u = (np.cos(angles) * dx + np.sin(angles) * dy)[None] / scales  # (scales, rotations, size*k, size*k)
    v = (-np.sin(angles) * dx + np.cos(angles) * dy)[None] / scales
    drawn = np.stack([_inside(shape, u, v) for shape in range(len(SHAPE_NAMES))])
    # Coverage of each pixel = mean of its k x k samples.
    covered = drawn.reshape(*drawn.shape[:3], size, k, size, k).mean(axis=(4, 6), dtype=np.float32)
    return covered


def generate_shapes(count: int = SHAPES_COUNT, size: int = SHAPES_SIZE, seed: int = 0) -> Shapes:
    """dSprites-like images: every combination of shape, scale, rotation, x and y, in a seeded order.

    With the default count (the size of the grid, 20,000) each combination appears exactly once;
    a smaller count takes a seeded sample without repeats, a larger one repeats the grid as evenly
    as possible. Positions are whole pixels apart, so each picture is one of the
    shapes x scales x rotations templates shifted into place: exactly what drawing it there would give.
    """
    if not (isinstance(count, int) and count >= 1):
        raise ValueError(f"count must be a positive whole number, not {count!r}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, not {size}")
    step = max(1, size // SHAPES_SIZE)  # pixels between neighbouring positions
    half = SHAPE_POSITIONS // 2
    centre = size // 2 + 0.5  # a pixel centre, so that whole-pixel shifts keep samples on the same sub-pixel grid
    templates = _templates(size, radius=size / 4, centre=centre)
    grid = (len(SHAPE_NAMES), len(SHAPE_SCALES), len(SHAPE_ROTATIONS), SHAPE_POSITIONS, SHAPE_POSITIONS)
    total = int(np.prod(grid))
    rng = np.random.default_rng(seed)
    repeats, rest = divmod(count, total)
    combos = np.concatenate([np.tile(np.arange(total), repeats), rng.choice(total, size=rest, replace=False)])
    combos = rng.permutation(combos)
    shape, scale, rotation, xi, yi = np.unravel_index(combos, grid)
    shift_x = (xi - half) * step  # pixels right of the template's centre
    shift_y = (half - 1 - yi) * step  # pixels below it; y counts upwards like the shape coordinates
    pad = half * step
    padded = np.pad(templates.reshape(-1, size, size), ((0, 0), (pad, pad), (pad, pad)))
    template = np.ravel_multi_index((shape, scale, rotation), grid[:3])
    rows = np.arange(size)[None, :, None] - shift_y[:, None, None] + pad
    columns = np.arange(size)[None, None, :] - shift_x[:, None, None] + pad
    images = padded[template[:, None, None], rows, columns][:, None]
    factors = {
        "shape": shape.astype(np.int64),
        "scale": np.asarray(SHAPE_SCALES, dtype=np.float32)[scale],
        "rotation": np.asarray(SHAPE_ROTATIONS, dtype=np.float32)[rotation],
        "x": (centre + shift_x).astype(np.float32),  # column of the shape's centre, in pixels from the left
        "y": (size - centre - shift_y).astype(np.float32),  # row of the centre, in pixels from the bottom
    }
    return Shapes(images, factors)


SHAPES_LARGE_SIZE = 64  # dSprites' own resolution: a shape has 5x the pixels, so its outline costs a beta-VAE less
SHAPES_DATASETS = ("shapes", "shapes64")  # the data sets of this module: every factor known for every image


def _shapes_dataset(name: str, size: int) -> Dataset:
    """The 20,000 images of `generate_shapes(size=size)` (seed 0); 10% of each shape held out, seed 0."""
    shapes = generate_shapes(size=size)
    labels = shapes.factors["shape"]
    train, test = stratified_split(labels, lambda n: n // 10, seed=0)
    images = torch.from_numpy(shapes.images)
    factors = {factor: torch.from_numpy(values) for factor, values in shapes.factors.items()}
    return Dataset(
        name=name,
        train_images=images[train].contiguous(), test_images=images[test].contiguous(),
        train_labels=factors["shape"][train].contiguous(), test_labels=factors["shape"][test].contiguous(),
        label_names=SHAPE_NAMES,
        train_factors={factor: values[train].contiguous() for factor, values in factors.items()},
        test_factors={factor: values[test].contiguous() for factor, values in factors.items()},
    )


@register("shapes", "Shapes with known factors (generated)",
          "Generated here (dSprites-like: square, ellipse, triangle, heart x scale x rotation x position); "
          "no external data, nothing to licence beyond this project's code")
def load_shapes(data_dir: str | None = None) -> Dataset:
    """`shapes` at 28x28, quick to train on a laptop. Labels are the shape; `train_factors` /
    `test_factors` hold every factor (shape, scale, rotation in degrees, x and y of the centre in pixels)."""
    return _shapes_dataset("shapes", SHAPES_SIZE)


@register("shapes64", "Shapes with known factors, 64x64 as dSprites (generated)",
          "Generated here: the same 20,000 combinations as `shapes`, drawn at 64x64 (x and y 2 pixels apart); "
          "no external data")
def load_shapes_64(data_dir: str | None = None) -> Dataset:
    """`shapes` drawn at 64x64, as dSprites (Matthey et al. 2017) is: the same factors and split, each
    shape 5x the pixels, so a beta > 1 model can afford its outline. x and y are in pixels of 64."""
    return _shapes_dataset("shapes64", SHAPES_LARGE_SIZE)
