"""Hand-written strokes out of a grey picture: ink against the local paper, its centre line, MNIST's width.

The MNIST recipe (LeCun et al., 1998) took NIST's binary digits, fitted each into a 20x20 box with
anti-aliasing and centred its mass in 28x28. Photos and drawings differ from NIST's scans in two
ways this module undoes before that recipe: the light over the paper is uneven (a gradient, a
vignette, a shadow), and the pen's width relative to the digit depends on how big it was written.

- The paper's brightness is estimated locally by a grey-level closing (Gonzalez & Woods, *Digital
  Image Processing*, "top-hat" shading correction): a window wider than any stroke wipes the dark
  strokes out and keeps the slowly varying light, shadow edges included (a quarter of the picture,
  widened to twice the widest stroke when a bold marker fills a tight crop). Ink is how much darker
  a pixel is than its own paper (a ratio, since light multiplies reflectance).
- The ink is kept by hysteresis above Otsu's threshold; specks are dropped.
- Its centre line (scikit-image's `skeletonize`, Zhang & Suen thinning) is redrawn at MNIST's median
  stroke width, so a small 7 and a large 7 give the same model input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold, threshold_otsu
from skimage.morphology import skeletonize

# Median ink area / centre-line length of mnist5k's 4,500 training digits, pixels above 0.5, at 28x28
# (10th-90th percentile 2.2-4.2): the stroke width every grey handwriting input is redrawn at.
MNIST_STROKE_PX = 3.0
MIN_CONTRAST = 0.12  # ink must be this much darker (as a fraction) than the paper around it
SPECK_FRACTION = 0.05  # marks under 5% of the largest mark's area are dust, not digit
MIN_EXTENT_PX = 8  # a mark shorter than this at the working size cannot be read
# A digit is several strokes long (MNIST: 4.8 for its thickest tenth); a dot is as long as it is wide.
MIN_LENGTH_PER_WIDTH = 3.0
MAX_MARKS = 3  # MNIST: 97.6% of digits are one mark, 99.5% at most 2
WIDEST_STROKE_PER_WINDOW = 0.75  # a stroke this wide relative to the paper's window is re-estimated with a wider one
MAX_LINE_PER_EXTENT = 5.0  # centre-line length / longer side; MNIST's largest is 3.3 (an 8): more is text or texture


class NotAStroke(ValueError):
    """What remains after the background is gone cannot be read as a written digit; the message says why."""


@dataclass(frozen=True)
class Strokes:
    """The isolated ink of one picture.

    `ink` (H, W) in [0, 1] is how much darker each pixel is than its local paper (for showing);
    `mask` (h, w) bool is the kept ink cropped to its box; `width_px` the measured stroke width in
    working pixels; `warnings` say what looks unlike a single digit (the input is still scored).
    """

    ink: np.ndarray
    mask: np.ndarray
    width_px: float
    window_px: int
    threshold: float
    specks_removed: int
    warnings: tuple[str, ...]


def light_paper(pixels: np.ndarray) -> tuple[bool, float]:
    """Whether a grey picture (H, W) in [0, 1] is dark ink on light paper, and its median pixel.

    Most of a page is paper, so the median sides with the paper even where a shadow or a vignette
    darkens the border (which a border-only rule would take for a dark background).
    """
    low, high = np.percentile(pixels, [1, 99])
    median = float(np.median(pixels))
    return median >= (low + high) / 2, median


def local_paper(paper: np.ndarray, window: int) -> np.ndarray:
    """The paper's brightness under each pixel of a light-background picture (H, W) in [0, 1].

    A closing (max then min filter, `window` pixels square) removes every dark mark narrower
    than the window and keeps gradients, vignettes and shadow edges. Pictures smaller than the
    window get one level: the closing of the whole picture.
    """
    # Padded by repeating the edge first: a shadow that runs off the picture keeps running, so its
    # corner at the edge is not rounded off (closing each filter's own padding would round it).
    margin = min(window, 2 * max(paper.shape))
    padded = np.pad(paper, margin, mode="edge")
    return ndimage.grey_closing(padded, size=(window, window), mode="nearest")[margin:-margin, margin:-margin]


def stroke_width(mask: np.ndarray, skeleton: np.ndarray | None = None) -> float:
    """Median width (pixels) of the strokes in a bool mask, from the distance to the paper along the centre line."""
    skeleton = skeletonize(mask) if skeleton is None else skeleton
    if not skeleton.any():
        return 0.0
    # A pixel in the middle of an n-pixel stroke is (n + 1) / 2 from the nearest paper pixel; the
    # paper goes on past the crop's edge (padding), or strokes touching the edge would seem wider.
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return max(1.0, 2.0 * float(np.median(distance[skeleton])) - 1.0)


def _ink(paper: np.ndarray, window: int):
    """Ink (H, W), its threshold, the kept mask and its labelled marks, with paper estimated in `window`-pixel
    windows."""
    background = local_paper(paper, window)
    # Darkness relative to the paper (light multiplies); under a tenth of full light, the difference
    # is damped instead, so black paper is not read as ink.
    ink = np.clip((background - paper) / np.maximum(background, 0.1), 0.0, 1.0).astype(np.float32)
    darker = ink[ink > threshold_otsu(ink)] if float(ink.max()) >= MIN_CONTRAST else ink[:0]
    if darker.size == 0:
        raise NotAStroke("The image is blank: no digit stands out from the background.")
    # The ink's own depth: the median of what Otsu's threshold separates from the paper. A stroke's
    # edge is where it is half as dark as its middle (as a line's width is taken at half its depth).
    depth = float(np.median(darker))
    threshold = max(MIN_CONTRAST, 0.5 * depth)
    # Hysteresis keeps the faint parts of a pencil stroke that touch its dark parts, and not the paper's grain.
    mask = apply_hysteresis_threshold(ink, max(0.6 * MIN_CONTRAST, 0.3 * depth), threshold)
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= SPECK_FRACTION * areas.max()) + 1
    return ink, threshold, np.isin(labels, keep), labels, count, keep


def isolate(paper: np.ndarray) -> Strokes:
    """Find the written strokes in a light-background picture (H, W) in [0, 1] (dark ink on paper).

    Raises NotAStroke for a blank picture, a dot too small to read, or a solid blob.
    """
    rows, cols = paper.shape
    whole = 2 * max(rows, cols) + 1  # a window this wide gives the whole picture one paper level
    # Wider than any pen stroke relative to the picture (a thick marker is ~1/10 of a filled frame).
    window = max(3, round(0.25 * min(rows, cols))) | 1 if min(rows, cols) >= 48 else whole
    while True:
        ink, threshold, mask, labels, count, keep = _ink(paper, window)
        # A stroke nearly as wide as the window is partly taken for paper (a bold marker in a tight
        # crop): estimate the paper again with a window twice as wide as the widest stroke found.
        widest = 2.0 * float(ndimage.distance_transform_edt(np.pad(mask, 1)).max())
        if window >= whole or widest < WIDEST_STROKE_PER_WINDOW * window:
            break
        window = min(whole, 2 * int(np.ceil(widest)) + 1)
    specks = count - len(keep)
    warnings = []
    if len(keep) > MAX_MARKS:
        warnings.append(f"{len(keep)} separate marks remain: a digit is one or two strokes. Is there more than one "
                        "digit, text or a pattern in the picture?")
    objects = ndimage.find_objects(labels)
    boxes = [objects[k - 1] for k in keep]
    if any((r.start == 0 and r.stop == rows) or (c.start == 0 and c.stop == cols) for r, c in boxes):
        warnings.append("A mark runs from one edge of the picture to the other (a ruled line, a fold, the edge of the "
                        "paper?): crop the photo to the digit.")
    ink_rows, ink_cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    mask = mask[ink_rows[0]:ink_rows[-1] + 1, ink_cols[0]:ink_cols[-1] + 1]
    skeleton = skeletonize(mask)
    width = stroke_width(mask, skeleton)
    extent = max(mask.shape)
    if extent < MIN_EXTENT_PX or extent < MIN_LENGTH_PER_WIDTH * width:
        if extent < MIN_EXTENT_PX or extent < 0.25 * min(rows, cols):
            raise NotAStroke(f"The mark is too small to read: {extent} pixels long with a stroke {width:.0f} pixels "
                             "wide, a dot rather than a digit. Write or draw the digit larger.")
        raise NotAStroke(f"This is a solid blob ({mask.shape[1]}x{mask.shape[0]} pixels, hardly longer than it is "
                         "thick), not a written digit.")
    if skeleton.sum() > MAX_LINE_PER_EXTENT * extent:
        warnings.append("There is far more line than in any digit (writing, hatching or a textured surface?): "
                        "the score says little about a digit.")
    return Strokes(ink, mask, width, window, threshold, specks, tuple(warnings))


def redraw(mask: np.ndarray, width_px: float) -> np.ndarray:
    """The strokes of a cropped bool mask (h, w) redrawn `width_px` wide along their centre line, as float (h, w).

    Anti-aliased by coverage: a pixel d from the centre line is inked by clip(width/2 - d + 1/2, 0, 1).
    """
    # A margin so strokes wider than the measured ones are not cut at the crop's edge.
    centre_line = np.pad(skeletonize(mask), int(np.ceil(width_px / 2)) + 1)
    distance = ndimage.distance_transform_edt(~centre_line)
    return np.clip(width_px / 2 - distance + 0.5, 0.0, 1.0).astype(np.float32)
