"""Images in and out of the models: display scaling, and the one upload/drawing preprocessing path.

Images inside the library are float tensors (N, C, H, W) or (C, H, W) in [0, 1].
"""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from vae import strokes
from vae.datasets.decode import ORIENTATION, TooManyPixels, crop_to_aspect, open_picture, orient, resize, to_float


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
MAX_PIXELS = 24_000_000  # a 24-megapixel camera's full frame; checked from the header, before decoding
PREPARING_AT_ONCE = 2  # uploads decoded at the same time on one server (2 cores); the others wait their turn
UPLOAD_TYPES = ("png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff")
DISPLAY_SIZE = 160  # preprocessing steps are shown at most this many pixels on a side
BACKGROUND_LIGHT = 0.5  # a border brighter than this is paper: invert to MNIST's light-on-dark
CONTENT_LEVEL = 0.2  # after removing the background, pixels above this count as the content
MNIST_BOX = 20 / 28  # MNIST fits each digit into 20x20 of 28x28, then centres its mass
HANDWRITING = ("mnist5k", "mnist", "digits", "kmnist")  # data sets of pen strokes: uploads get the stroke recipe
_preparing = threading.BoundedSemaphore(PREPARING_AT_ONCE)


class ImageInputError(ValueError):
    """An upload or drawing that cannot become a model input; the message is meant for the user.

    The only exception that leaves `load_image` / `prepare_image` / `prepare_upload`; from the last,
    `reason` is the message without the file's name.
    """

    reason: str = ""


@dataclass(frozen=True)
class Step:
    """One preprocessing step as shown to the learner: a title, what happened, the picture after it."""

    title: str
    detail: str
    image: np.ndarray  # (H, W) or (H, W, 3) float in [0, 1]


@dataclass(frozen=True)
class PreparedImage:
    """A model input made from an upload: x (1, C, H, W) in [0, 1], the steps that made it, and
    `warnings`: sentences saying what looks unlike the training data (the input is still scored)."""

    x: torch.Tensor
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()


def recipe_for(dataset_name: str | None, image_shape: tuple[int, int, int]) -> str:
    """Which preprocessing a model's uploads get: "colour" (C = 3), "strokes" for handwriting data sets
    (and when the data set is not known), "objects" for other grey data (clothes, shapes, your folders)."""
    if image_shape[0] == 3:
        return "colour"
    base = (dataset_name or "").partition(":")[0]
    return "strokes" if not dataset_name or base in HANDWRITING else "objects"


def drawing_sentence(recipe: str, image_shape: tuple[int, int, int]) -> str:
    """What happens to a drawing, in the learner's words, for the recipe `recipe_for` chose."""
    _, height, width = image_shape
    if recipe == "colour":
        return (f"Colour models see the drawing as drawn, dark on light (nothing is inverted), cropped to the model's "
                f"shape and resized to {width}x{height}.")
    if recipe == "strokes":
        return ("Draw dark on light, like on paper, at any size: the preprocessing inverts it to MNIST's light on "
                "dark, redraws the strokes at MNIST's width and centres the digit.")
    return "Draw dark on light, like on paper; the preprocessing inverts it to light on dark, crops it and centres it."


def _thumbnail(array: np.ndarray) -> np.ndarray:
    """A small copy of an (H, W[, 3]) float image for showing a step."""
    height, width = array.shape[:2]
    scale = DISPLAY_SIZE / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    small = [np.asarray(Image.fromarray(c.astype(np.float32), "F").resize(size, Image.Resampling.BOX))
             for c in channels]
    return np.clip(small[0] if array.ndim == 2 else np.stack(small, axis=-1), 0, 1)


def load_image(data: bytes) -> tuple[Image.Image, list[str], int | None]:
    """Decode an uploaded file's bytes with the one decoder (`vae.datasets.decode.open_picture`).

    Returns the image, notes on what was done, and its EXIF orientation tag (or None). Raises
    ImageInputError for anything that is not a readable, reasonably sized image.
    """
    if not data:
        raise ImageInputError("the file is empty (0 bytes).")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageInputError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
    try:
        # Pillow refuses images above 2 x 89.5 Mpx at open (DecompressionBombError); our own lower
        # limit is checked from the header, before a single pixel is decoded.
        image, notes, orientation = open_picture(data, MAX_PIXELS)
    except TooManyPixels as error:
        raise ImageInputError(
            f"{error.width:,} x {error.height:,} pixels is too large to decode safely "
            f"(limit {MAX_PIXELS / 1e6:.0f} million pixels). Shrink it first.") from None
    except Image.UnidentifiedImageError:
        raise ImageInputError("this is not an image Pillow can read (PNG, JPEG, GIF, BMP, WebP or TIFF).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError("refused as a decompression bomb (far too many pixels for its size).") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error, zlib.error) as error:
        raise ImageInputError(f"the image data is damaged or truncated and cannot be decoded ({error}).") from None
    except Exception as error:  # decoders raise odd types for odd files; the user still gets one message
        raise ImageInputError(f"the image cannot be decoded ({type(error).__name__}: {error}).") from None
    return image, notes, orientation


def _fit_like_mnist(ink: np.ndarray, height: int, width: int) -> tuple[np.ndarray, str]:
    """Scale the cropped digit to fit a box of 20/28 of the image, then centre its mass (MNIST's recipe)."""
    box_h, box_w = max(1, round(height * MNIST_BOX)), max(1, round(width * MNIST_BOX))
    scale = min(box_h / ink.shape[0], box_w / ink.shape[1])
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    digit = resize(ink, size)
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


def _orient(image: Image.Image, orientation: int | None, steps: list[Step], notes: list[str]) -> Image.Image:
    """Turn the picture upright by its EXIF tag; only a tag that changes something is listed as a step."""
    upright = orient(image, orientation)
    if upright is not image:
        steps.append(Step("EXIF orientation", f"the camera's orientation tag {orientation} applied",
                          _thumbnail(to_float(upright, 3)[0])))
    elif orientation not in (None, 1):
        notes.append(f"EXIF orientation tag {orientation} is not one of 1-8: ignored.")
    return upright


def _stroke_recipe(pixels: np.ndarray, height: int, width: int,
                   steps: list[Step]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Handwriting: ink against its local paper, the strokes redrawn at MNIST's width, MNIST's box (see vae.strokes)."""
    light, median = strokes.light_paper(pixels)
    why = f"most of the picture is {'light' if light else 'dark'} (median {median:.2f})"
    paper = pixels if light else 1.0 - pixels
    steps.append(Step("Invert", f"{why}: dark ink on paper, inverted (MNIST digits are light on dark)" if light else
                      f"not needed: {why}, already light on dark", _thumbnail(1.0 - paper)))
    try:
        found = strokes.isolate(paper)
    except strokes.NotAStroke as error:
        raise ImageInputError(str(error)) from None
    specks = f", {found.specks_removed} speck(s) dropped" if found.specks_removed else ""
    steps.append(Step("Isolate the strokes", f"paper brightness estimated in {found.window_px}-pixel windows, so "
                                             "shadows and uneven light drop out; ink kept above "
                                             f"{found.threshold:.2f}{specks}; cropped to "
                                             f"{found.mask.shape[1]}x{found.mask.shape[0]} pixels",
                      _thumbnail(found.ink)))
    box_h, box_w = max(1, round(height * MNIST_BOX)), max(1, round(width * MNIST_BOX))
    target = strokes.MNIST_STROKE_PX * height / 28  # in model pixels
    rows, cols = found.mask.shape
    # Solve for the width t (working pixels) that is `target` once the redrawn digit (centre line + t) fits the box.
    redraw_px = max(1.0, target * (rows - found.width_px) / (box_h - target),
                    target * (cols - found.width_px) / (box_w - target))
    drawn = strokes.redraw(found.mask, redraw_px)
    ink_rows, ink_cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    drawn = drawn[ink_rows[0]:ink_rows[-1] + 1, ink_cols[0]:ink_cols[-1] + 1]
    measured = found.width_px * target / redraw_px
    steps.append(Step("Stroke width", f"strokes {measured:.1f} pixels wide at {width}x{height} (MNIST's: about "
                      f"{target:.1f}), redrawn {target:.1f} wide along their centre lines", _thumbnail(_square(drawn))))
    return drawn, found.warnings


def _object_recipe(pixels: np.ndarray, steps: list[Step]) -> np.ndarray:
    """Other grey data: invert a light background, remove its level, crop to the content."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if np.median(border) > BACKGROUND_LIGHT:
        pixels = 1.0 - pixels
        steps.append(Step("Invert", f"the background is light (border median {np.median(border):.2f}); "
                                    "the training images are light on dark", _thumbnail(pixels)))
    else:
        steps.append(Step("Invert", "not needed: the background is already dark", _thumbnail(pixels)))
    background = float(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))
    ink = np.clip((pixels - background) / max(float(pixels.max()) - background, 1e-6), 0, 1)
    if float(pixels.max()) - background < 0.05 or not (ink > CONTENT_LEVEL).any():
        raise ImageInputError("The image is blank: nothing stands out from the background.")
    rows = np.flatnonzero((ink > CONTENT_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > CONTENT_LEVEL).any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    steps.append(Step("Crop to content", f"background level {background:.2f} removed; cropped to the content, "
                                          f"{ink.shape[1]}x{ink.shape[0]} pixels", _thumbnail(_square(ink))))
    return ink


def _square(image: np.ndarray) -> np.ndarray:
    """A crop padded to a square with black, only for showing it like the other steps."""
    side = max(image.shape)
    shown = np.zeros((side, side), dtype=np.float32)
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    shown[top:top + image.shape[0], left:left + image.shape[1]] = image
    return shown


def prepare_image(image: Image.Image, image_shape: tuple[int, int, int], notes: list[str] | None = None,
                  orientation: int | None = None, recipe: str | None = None) -> PreparedImage:
    """Turn a decoded image into a model input (1, C, H, W) in [0, 1], recording every step.

    `recipe` (see `recipe_for`; by default "strokes" for grey models): "strokes" is MNIST's recipe
    after isolating the ink against its local paper and redrawing it at MNIST's stroke width;
    "objects" inverts a light background, removes its level and crops; both then scale into a
    20/28 box and centre the mass. "colour" takes RGB, centre-crops to the model's aspect ratio
    and resizes. `orientation` is the EXIF tag (read from `image` when None). Raises
    ImageInputError (a blank image, a dot too small to read).
    """
    channels, height, width = image_shape
    if channels not in (1, 3):
        raise ImageInputError(f"This model takes {channels}-channel images; uploads work for 1 (gray) or 3 (RGB).")
    recipe = recipe or ("colour" if channels == 3 else "strokes")
    notes = list(notes or [])
    steps: list[Step] = []
    try:
        original, why = to_float(image, 3)
        if orientation is None:
            orientation = image.getexif().get(ORIENTATION)
        upright = _orient(image, orientation if isinstance(orientation, int) else None, steps, notes)
        steps.insert(0, Step("As uploaded", " ".join(notes) or f"{image.width}x{image.height} {image.mode}",
                             _thumbnail(original)))
        pixels, why = to_float(upright, channels)
    except (OSError, ValueError, SyntaxError, MemoryError) as error:
        raise ImageInputError(f"The image could not be converted ({error}).") from None
    steps.append(Step("To grayscale" if channels == 1 else "To RGB", why, _thumbnail(pixels)))
    if channels == 3:
        # As a folder data set's picture (vae.datasets.decode.decode_image): the same file, the same pixels.
        pixels = crop_to_aspect(pixels, width, height)
        steps.append(Step("Crop to shape", f"centre crop to the model's {width}:{height} aspect", _thumbnail(pixels)))
        pixels = resize(pixels, (width, height))
        steps.append(Step("Resize", f"to the model's {width}x{height}", pixels))
        return PreparedImage(torch.from_numpy(pixels.transpose(2, 0, 1).copy()).float().unsqueeze(0), tuple(steps))
    warnings: tuple[str, ...] = ()
    if recipe == "strokes":
        content, warnings = _stroke_recipe(pixels, height, width, steps)
    else:
        content = _object_recipe(pixels, steps)
    fitted, how = _fit_like_mnist(content, height, width)
    steps.append(Step("Pad and scale", how, fitted))
    return PreparedImage(torch.from_numpy(fitted).float()[None, None], tuple(steps), warnings)


def prepare_upload(data: bytes, image_shape: tuple[int, int, int], name: str = "image",
                   recipe: str | None = None) -> PreparedImage:
    """Bytes of an uploaded (or drawn) image to a model input; raises only ImageInputError, its message
    starting with `name` (`reason`: the rest). At most PREPARING_AT_ONCE run at once on a server; the others wait."""
    try:
        with _preparing:  # three big photos at once must not triple the server's peak memory
            image, notes, orientation = load_image(data)
            return prepare_image(image, image_shape, notes, orientation, recipe)
    except Exception as error:  # a Pillow corner case not met yet: still one clear error, never a traceback
        reason = str(error) if isinstance(error, ImageInputError) else \
            f"the image could not be prepared ({type(error).__name__}: {error})."
        named = ImageInputError(f"{name}: {reason}")
        named.reason = reason
        raise named from None
