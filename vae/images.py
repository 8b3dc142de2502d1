"""Images in and out of the models: display scaling, and the one upload/drawing preprocessing path.

Images inside the library are float tensors (N, C, H, W) or (C, H, W) in [0, 1].
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps


def to_display_image(image: torch.Tensor, width: int = 112) -> Image.Image:
    """One image (C, H, W) in [0, 1] as a Pillow image `width` pixels wide, scaled with no blur."""
    array = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    array = array.squeeze(0).numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    picture = Image.fromarray(np.ascontiguousarray(array))
    height = max(1, round(width * picture.height / picture.width))
    return picture.resize((width, height), Image.Resampling.NEAREST)


def image_grid(images: torch.Tensor, columns: int = 8, width: int = 640) -> Image.Image:
    """Images (N, C, H, W) in [0, 1] tiled into one picture `width` pixels wide, scaled with no blur.

    Rows of `columns` images with a 1-pixel white border around each (as torchvision's make_grid
    draws them; tiled here because importing torchvision costs the app seconds at start-up).
    """
    images = images.detach().cpu().clamp(0, 1)
    count, channels, height, image_width = images.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    grid = torch.ones(channels, rows * (height + 1) + 1, columns * (image_width + 1) + 1)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = 1 + row * (height + 1), 1 + column * (image_width + 1)
        grid[:, top:top + height, left:left + image_width] = image
    return to_display_image(grid, width)


# ---------------------------------------------------------------------------------------------
# Uploads and drawings: the one path from a file's bytes to a model input.

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml
MAX_PIXELS = 40_000_000  # well under Pillow's own bomb limits; larger photos are not digits
UPLOAD_TYPES = ("png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff")
DISPLAY_SIZE = 160  # preprocessing steps are shown at most this many pixels on a side
BACKGROUND_LIGHT = 0.5  # a border brighter than this is paper: invert to MNIST's light-on-dark
CONTENT_LEVEL = 0.2  # after removing the background, pixels above this count as the digit's ink
MNIST_BOX = 20 / 28  # MNIST fits each digit into 20x20 of 28x28, then centres its mass


class ImageInputError(ValueError):
    """An upload or drawing that cannot become a model input; the message is meant for the user.

    The only exception that leaves `load_image` / `prepare_image` / `prepare_upload`.
    """


@dataclass(frozen=True)
class Step:
    """One preprocessing step as shown to the learner: a title, what happened, the picture after it."""

    title: str
    detail: str
    image: np.ndarray  # (H, W) or (H, W, 3) float in [0, 1]


@dataclass(frozen=True)
class PreparedImage:
    """A model input made from an upload: x (1, C, H, W) in [0, 1] and the steps that made it."""

    x: torch.Tensor
    steps: tuple[Step, ...]


def _thumbnail(array: np.ndarray) -> np.ndarray:
    """A small copy of an (H, W[, 3]) float image for showing a step (big uploads stay big only in memory)."""
    height, width = array.shape[:2]
    scale = DISPLAY_SIZE / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    small = [np.asarray(Image.fromarray(c.astype(np.float32), "F").resize(size, Image.Resampling.BOX)) for c in channels]
    return np.clip(small[0] if array.ndim == 2 else np.stack(small, axis=-1), 0, 1)


def load_image(data: bytes, name: str = "image") -> tuple[Image.Image, list[str]]:
    """Decode an uploaded file's bytes (frame 0 of an animation); returns the image and notes.

    Raises ImageInputError for anything that is not a readable, reasonably sized image.
    """
    if not data:
        raise ImageInputError(f"{name}: the file is empty (0 bytes).")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageInputError(f"{name}: the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
    notes: list[str] = []
    try:
        # Pillow refuses images above 2 x 89.5 Mpx at open (DecompressionBombError); our own lower
        # limit is checked from the header, before a single pixel is decoded.
        image = Image.open(io.BytesIO(data))  # lazy: reads the header only
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageInputError(
                f"{name}: {width:,} x {height:,} pixels is too large to decode safely "
                f"(limit {MAX_PIXELS / 1e6:.0f} million pixels). Shrink it first.")
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(0)
            notes.append(f"Animated image with {frames} frames: the first frame is used.")
        image.load()  # decodes now: truncation and corrupt data show up here
    except ImageInputError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageInputError(f"{name}: this is not an image Pillow can read (PNG, JPEG, GIF, BMP, WebP or TIFF).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(f"{name}: refused as a decompression bomb (far too many pixels for its size).") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error, zlib.error) as error:
        raise ImageInputError(f"{name}: the image data is damaged or truncated and cannot be decoded ({error}).") from None
    except Exception as error:  # decoders raise odd types for odd files; the user still gets one message
        raise ImageInputError(f"{name}: the image cannot be decoded ({type(error).__name__}: {error}).") from None
    return image, notes


def _to_float(image: Image.Image, channels: int) -> tuple[np.ndarray, str]:
    """Pixels as float (H, W) or (H, W, 3) in [0, 1], and what was done to get there."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16/32-bit and float images: Pillow's convert("L") clips instead of scaling, so scale here.
        gray = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            top, how = 65535.0, "16-bit gray scaled from 0..65535"
        else:
            top = 1.0 if mode == "F" and gray.max() <= 1.0 else max(float(gray.max()), 1.0)
            how = f"{'32-bit' if mode == 'I' else 'float'} gray scaled by its maximum"
        gray = np.clip(np.nan_to_num(gray / top), 0, 1)
        return (np.repeat(gray[..., None], 3, axis=2), how + ", repeated into RGB") if channels == 3 else (gray, how)
    how = f"{mode} image"
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


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W[, 3]) image to size = (width, height), antialiased."""
    if array.shape[1] == size[0] and array.shape[0] == size[1]:
        return array
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    out = [np.asarray(Image.fromarray(c.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS)) for c in channels]
    return np.clip(out[0] if array.ndim == 2 else np.stack(out, axis=-1), 0, 1)


def _fit_like_mnist(ink: np.ndarray, height: int, width: int) -> tuple[np.ndarray, str]:
    """Scale the cropped digit to fit a box of 20/28 of the image, then centre its mass (MNIST's recipe)."""
    box_h, box_w = max(1, round(height * MNIST_BOX)), max(1, round(width * MNIST_BOX))
    scale = min(box_h / ink.shape[0], box_w / ink.shape[1])
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    digit = _resize(ink, size)
    canvas = np.zeros((height, width), dtype=np.float32)
    mass = digit.sum()
    rows, cols = np.indices(digit.shape)
    centre_row = (rows * digit).sum() / mass if mass > 0 else (digit.shape[0] - 1) / 2
    centre_col = (cols * digit).sum() / mass if mass > 0 else (digit.shape[1] - 1) / 2
    top = int(np.clip(round((height - 1) / 2 - centre_row), 0, height - digit.shape[0]))
    left = int(np.clip(round((width - 1) / 2 - centre_col), 0, width - digit.shape[1]))
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return canvas, (f"scaled to fit {box_w}x{box_h} (MNIST: 20x20 of 28x28), "
                    f"placed in {width}x{height} with its centre of mass in the middle")


def prepare_image(image: Image.Image, image_shape: tuple[int, int, int], notes: list[str] | None = None) -> PreparedImage:
    """Turn a decoded image into a model input (1, C, H, W) in [0, 1], recording every step.

    Grayscale models (C = 1) get MNIST's recipe: EXIF orientation, grayscale, invert if the
    background is light, remove the background level, crop to the ink, scale into a 20/28 box,
    centre by mass. Colour models (C = 3) get EXIF orientation, RGB, a centre crop to the model's
    aspect ratio and a resize. Raises ImageInputError (e.g. for a blank image).
    """
    channels, height, width = image_shape
    if channels not in (1, 3):
        raise ImageInputError(f"This model takes {channels}-channel images; uploads work for 1 (gray) or 3 (RGB).")
    steps: list[Step] = []
    try:
        original, why = _to_float(image, 3)
        steps.append(Step("As uploaded", " ".join(notes or []) or f"{image.width}x{image.height} {image.mode}", _thumbnail(original)))
        orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation
        upright = ImageOps.exif_transpose(image)
        if orientation not in (1, None):
            steps.append(Step("EXIF orientation", f"the camera's orientation tag {orientation} applied", _thumbnail(_to_float(upright, 3)[0])))
        pixels, why = _to_float(upright, channels)
    except (OSError, ValueError, SyntaxError, MemoryError) as error:
        raise ImageInputError(f"The image could not be converted ({error}).") from None
    steps.append(Step("To grayscale" if channels == 1 else "To RGB", why, _thumbnail(pixels)))
    if channels == 3:
        target = width / height
        rows, cols = pixels.shape[:2]
        if cols / rows > target:
            keep = max(1, round(rows * target))
            pixels = pixels[:, (cols - keep) // 2:(cols - keep) // 2 + keep]
        else:
            keep = max(1, round(cols / target))
            pixels = pixels[(rows - keep) // 2:(rows - keep) // 2 + keep]
        steps.append(Step("Crop to shape", f"centre crop to the model's {width}:{height} aspect", _thumbnail(pixels)))
        pixels = _resize(pixels, (width, height))
        steps.append(Step("Resize", f"to the model's {width}x{height}", pixels))
        return PreparedImage(torch.from_numpy(pixels.transpose(2, 0, 1).copy()).float().unsqueeze(0), tuple(steps))

    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if np.median(border) > BACKGROUND_LIGHT:
        pixels = 1.0 - pixels
        steps.append(Step("Invert", f"the background is light (border median {np.median(border):.2f}); "
                                    "MNIST digits are light on dark", _thumbnail(pixels)))
    else:
        steps.append(Step("Invert", "not needed: the background is already dark", _thumbnail(pixels)))
    background = float(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))
    ink = np.clip((pixels - background) / max(float(pixels.max()) - background, 1e-6), 0, 1)
    if float(pixels.max()) - background < 0.05 or not (ink > CONTENT_LEVEL).any():
        raise ImageInputError("The image is blank: no digit stands out from the background.")
    rows = np.flatnonzero((ink > CONTENT_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > CONTENT_LEVEL).any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = max(ink.shape)
    shown = np.zeros((side, side), dtype=np.float32)  # padded square only for showing, like the other steps
    shown[(side - ink.shape[0]) // 2:(side - ink.shape[0]) // 2 + ink.shape[0], (side - ink.shape[1]) // 2:(side - ink.shape[1]) // 2 + ink.shape[1]] = ink
    steps.append(Step("Crop to content", f"background level {background:.2f} removed; cropped to the ink, "
                                          f"{ink.shape[1]}x{ink.shape[0]} pixels", _thumbnail(shown)))
    fitted, how = _fit_like_mnist(ink, height, width)
    steps.append(Step("Pad and scale", how, fitted))
    return PreparedImage(torch.from_numpy(fitted).float()[None, None], tuple(steps))


def prepare_upload(data: bytes, image_shape: tuple[int, int, int], name: str = "image") -> PreparedImage:
    """Bytes of an uploaded (or drawn) image to a model input; raises only ImageInputError."""
    image, notes = load_image(data, name)
    try:
        return prepare_image(image, image_shape, notes)
    except ImageInputError as error:
        raise ImageInputError(f"{name}: {error}") from None
    except Exception as error:  # a Pillow corner case not met yet: still one clear error, never a traceback
        raise ImageInputError(f"{name}: the image could not be prepared ({type(error).__name__}: {error}).") from None
