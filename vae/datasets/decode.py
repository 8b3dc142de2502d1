"""The one image decoder: a picture file to float pixels in [0, 1], the same wherever it comes from.

Folder data sets (`folder:`), students' uploaded sets (`upload:`, read as a folder) and the
Upload & draw page (vae.images) all decode through here, so one file gives one array:

- the first frame of an animation; JPEGs decoded at a reduced scale when far larger than needed;
- at most WORKING_SIZE pixels on a side, shrunk in the file's own pixel format (8 or 16 bits);
- the EXIF orientation applied (CIPA DC-008);
- 16-bit grey scaled from 0..65535; 32-bit integer and floating-point grey kept as they are
  when in 0..1, otherwise scaled from min(0, lowest)..max(1, highest) (never clipped, and a flat
  picture keeps its brightness); +inf the brightest, -inf and NaN the darkest;
- palette expanded, transparency laid on white, CMYK converted; grey as luminance (ITU-R 601-2);
- everything in float: resizing is Lanczos on float pixels, so 16-bit precision survives.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

WORKING_SIZE = 512  # pictures are shrunk to this many pixels on a side before any conversion (models see 8-64)
ORIENTATION = 0x0112  # EXIF tag
# EXIF orientations 2-8 (CIPA DC-008, as Pillow's ImageOps.exif_transpose reads them); 1 means upright.
EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                  5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                  8: Image.Transpose.ROTATE_90}
# What Pillow raises for a file it cannot decode (damaged, truncated, not a picture, a bomb).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


class TooManyPixels(ValueError):
    """A picture whose header declares more pixels than the caller allows (nothing was decoded)."""

    def __init__(self, width: int, height: int):
        super().__init__(f"{width:,} x {height:,} pixels")
        self.width, self.height = width, height


def _finite(image: Image.Image, notes: list[str]) -> Image.Image:
    """A float image with its infinities and NaNs replaced (+inf the brightest, -inf and NaN the darkest), said in
    `notes`."""
    if image.mode != "F":
        return image
    values = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(values)
    if finite.all():
        return image
    good = values[finite]
    low = min(float(good.min()), 0.0) if good.size else 0.0
    high = max(float(good.max()), 1.0) if good.size else 1.0
    # Strictly beyond every finite pixel: +inf strokes on white paper (1.0) must not become paper.
    largest = float(np.finfo(np.float32).max)  # the results stay finite in float32
    bright, dark = min(high + (high - low), largest), max(low - (high - low), -largest)
    notes.append(f"{values.size - int(finite.sum()):,} pixels were infinite or not a number: +inf taken as the "
                 "brightest value, -inf and NaN as the darkest.")
    return Image.fromarray(np.nan_to_num(values, nan=dark, posinf=bright, neginf=dark), "F")


def _shrink(image: Image.Image) -> Image.Image:
    """At most WORKING_SIZE on a side, shrunk in the file's own pixel format (8 or 16 bits, not float64)."""
    if max(image.size) <= WORKING_SIZE:
        return image
    if image.mode in ("1", "P"):  # 1-bit and palette pixels cannot be averaged; the palette may hold transparency
        image = image.convert("L" if image.mode == "1" else "RGBA")
    # Pillow's fast integer reduce() (used first by thumbnail) has no 16-bit mode: resample those directly.
    image.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.LANCZOS,
                    reducing_gap=None if image.mode.startswith("I;16") else 2.0)
    return image


def open_picture(data: bytes, max_pixels: int | None = None) -> tuple[Image.Image, list[str], int | None]:
    """A file's bytes decoded (frame 0 of an animation), at most WORKING_SIZE on a side.

    Returns the image, notes on what was done, and its EXIF orientation tag (or None; not yet
    applied, see `orient`). Raises TooManyPixels when the header declares more than `max_pixels`
    (checked before a single pixel is decoded), else one of DECODE_ERRORS for an unreadable file.
    """
    notes: list[str] = []
    image = Image.open(io.BytesIO(data))  # lazy: reads the header only
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise TooManyPixels(width, height)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        image.seek(0)
        notes.append(f"Animated image with {frames} frames: the first frame is used.")
    if max(width, height) > WORKING_SIZE:
        image.draft(None, (WORKING_SIZE, WORKING_SIZE))  # JPEG decodes at 1/2 to 1/8 scale; others ignore it
    image.load()  # decodes now: truncation and corrupt data show up here
    orientation = image.getexif().get(ORIENTATION)
    image = _shrink(_finite(image, notes))
    if image.size != (width, height):
        notes.append(f"{width:,} x {height:,} pixels, shrunk to {image.width} x {image.height} before converting.")
    return image, notes, orientation if isinstance(orientation, int) else None


def orient(image: Image.Image, orientation: int | None) -> Image.Image:
    """The picture turned upright by its EXIF orientation tag; the same image when the tag changes nothing."""
    return image.transpose(EXIF_TRANSPOSE[orientation]) if orientation in EXIF_TRANSPOSE else image


def to_float(image: Image.Image, channels: int) -> tuple[np.ndarray, str]:
    """Pixels as float (H, W) for channels = 1 or (H, W, 3) for 3, in [0, 1], and what was done to get there."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16/32-bit and float images: Pillow's convert("L") clips instead of scaling, so scale here.
        gray = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            top, how = 65535.0, "16-bit gray scaled from 0..65535"
            bottom = 0.0
        else:
            # 0..1 stays as it is; values beyond it (negative ones included) are scaled into it, not clipped.
            bottom, top = min(float(gray.min()), 0.0), max(float(gray.max()), 1.0)
            how = f"{'32-bit' if mode == 'I' else 'float'} gray scaled from {bottom:g}..{top:g}"
        gray = np.clip(np.nan_to_num((gray - bottom) / (top - bottom)), 0, 1)
        return (np.repeat(gray[..., None], 3, axis=2), how + ", repeated into RGB") if channels == 3 else (gray, how)
    how = f"{mode} image"
    if mode == "L" and channels == 1:
        return np.asarray(image, dtype=np.float32) / 255.0, "L image, already grayscale"
    if mode in ("P", "PA"):
        image = image.convert("RGBA")  # the palette may hold transparency
        how += " (palette) expanded"
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
        how += ", transparency composited on white"
    elif image.mode == "CMYK":
        how += " converted from CMYK"
    rgb = image.convert("RGB")
    if channels == 3:
        return np.asarray(rgb, dtype=np.float32) / 255.0, how + ", as RGB"
    return np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0, how + ", to grayscale (luminance)"


def crop_to_aspect(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centre of a (H, W[, 3]) image cut to the aspect ratio width:height (whole pixels)."""
    target = width / height
    rows, cols = pixels.shape[:2]
    if cols / rows > target:
        keep = max(1, round(rows * target))
        return pixels[:, (cols - keep) // 2:(cols - keep) // 2 + keep]
    keep = max(1, round(cols / target))
    return pixels[(rows - keep) // 2:(rows - keep) // 2 + keep]


def resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W[, 3]) image to size = (width, height), Lanczos on float pixels, clipped to [0, 1]."""
    if array.shape[1] == size[0] and array.shape[0] == size[1]:
        return array
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    out = [np.asarray(Image.fromarray(c.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS))
           for c in channels]
    return np.clip(out[0] if array.ndim == 2 else np.stack(out, axis=-1), 0, 1)


def decode_image(source: bytes | str | Path, size: int, channels: int) -> np.ndarray:
    """One picture (a file's bytes or its path) as float32 (channels, size, size) in [0, 1].

    Decoded as the module says, centre-cropped to a square and resized (Lanczos, in float).
    Raises one of DECODE_ERRORS for a file that cannot be read.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    image, _, orientation = open_picture(data)
    pixels, _ = to_float(orient(image, orientation), channels)
    pixels = resize(crop_to_aspect(pixels, size, size), (size, size)).astype(np.float32)
    return np.ascontiguousarray(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1))
