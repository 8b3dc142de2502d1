"""One image decoder (vae.datasets.decode): a file gives the same pixels as a folder picture and as an upload.

Before, `folder:` sets and the Upload & draw page decoded with two functions that disagreed on
16/32-bit and float pictures and resized in 8 bits (folder) or in float (upload); the upload's
decoding won (see vae/datasets/decode.py), so every test here failed for the folder path.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vae.datasets import folder_dataset_name, load_dataset
from vae.images import prepare_upload

RNG = np.random.default_rng(0)
GRADIENT = np.linspace(0, 1, 28 * 28).reshape(28, 28)  # every pixel a different grey


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: viewers turn it 90 degrees clockwise
    picture = Image.fromarray(RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    return encode(picture, "JPEG", exif=exif.tobytes(), quality=95)


def photo(width: int, height: int) -> Image.Image:
    """A smooth colour picture (larger than the decoder's 512-pixel working size when asked)."""
    rows, cols = np.mgrid[0:height, 0:width] / max(width, height)
    return Image.fromarray((np.stack([rows, cols, (rows + cols) / 2], axis=-1) * 255).astype(np.uint8))


def with_alpha(mode: str) -> Image.Image:
    pixels = RNG.integers(0, 256, (30, 40, len(mode)), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


# Each kind of input on which the two old decoders disagreed, as the bytes of one file.
KINDS = {
    "16-bit grey PNG": lambda: encode(Image.fromarray((GRADIENT * 65535).astype(np.uint16))),
    "16-bit grey PGM (Pillow: 32-bit I)": lambda: encode(Image.fromarray((GRADIENT * 65535).astype(np.uint16)), "PPM"),
    "32-bit integer TIFF": lambda: encode(Image.fromarray((1000 + GRADIENT * 2000).astype(np.int32)), "TIFF"),
    "float TIFF within 0..1": lambda: encode(Image.fromarray((0.2 + 0.4 * GRADIENT).astype(np.float32)), "TIFF"),
    "flat float TIFF": lambda: encode(Image.fromarray(np.full((28, 28), 0.7, np.float32)), "TIFF"),
    "float TIFF with NaN and inf": lambda: encode(Image.fromarray(
        np.where(GRADIENT > 0.9, np.inf, np.where(GRADIENT < 0.1, np.nan, GRADIENT)).astype(np.float32)), "TIFF"),
    "8-bit RGB, resized": lambda: encode(Image.fromarray(RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8))),
    "RGBA": lambda: encode(with_alpha("RGBA")),
    "grey with alpha (LA)": lambda: encode(with_alpha("LA")),
    "palette": lambda: encode(photo(40, 30).convert("P")),
    "palette with transparency": lambda: encode(photo(40, 30).convert("P"), transparency=3),
    "1-bit": lambda: encode(Image.fromarray(RNG.integers(0, 2, (30, 40)).astype(bool))),
    "CMYK JPEG": lambda: encode(photo(40, 30).convert("CMYK"), "JPEG"),
    "EXIF-rotated JPEG": rotated_jpeg,
    "animated GIF": lambda: encode(photo(40, 30).convert("L"), "GIF", save_all=True,
                                   append_images=[Image.new("L", (40, 30))]),
    "large JPEG": lambda: encode(photo(1300, 900), "JPEG", quality=90),
    "large PNG": lambda: encode(photo(900, 1300)),
}


def folder_pictures(tmp_path, files: dict[str, bytes], size: int = 28, color: str = "gray") -> list[np.ndarray]:
    """Each file as `folder:` decodes it: (C, size, size) arrays (in the split's order: give copies of one file)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    dataset = load_dataset(folder_dataset_name(folder, size, color))
    assert len(dataset.train_images) + len(dataset.test_images) == len(files)  # none skipped
    assert dataset.label_names == ("pictures",) and dataset.notes == ""
    return list(np.concatenate([dataset.train_images.numpy(), dataset.test_images.numpy()]))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_file_gives_the_same_pixels_as_a_folder_picture_and_as_an_upload(tmp_path, kind):
    data = KINDS[kind]()
    kind_of_file = Image.open(io.BytesIO(data)).format
    extension = {"JPEG": ".jpg", "TIFF": ".tif", "PPM": ".pgm", "GIF": ".gif"}.get(kind_of_file, ".png")
    # Two copies: a folder set needs at least two pictures.
    pictures = folder_pictures(tmp_path, {f"a{extension}": data, f"b{extension}": data}, size=32, color="rgb")
    uploaded = prepare_upload(data, (3, 32, 32), kind, recipe="colour").x[0].numpy()
    for picture in pictures:
        np.testing.assert_allclose(picture, uploaded, atol=1e-6, rtol=0)


def test_16_bit_grey_keeps_its_precision_in_a_folder_set(tmp_path):
    data = KINDS["16-bit grey PNG"]()
    picture = folder_pictures(tmp_path, {"a.png": data, "b.png": data})[0][0]
    expected = (GRADIENT * 65535).astype(np.uint16) / 65535  # not rounded to 8 bits on the way
    np.testing.assert_allclose(picture, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind, expected", [
    ("float TIFF within 0..1", 0.2 + 0.4 * GRADIENT),  # kept as it is, not stretched to 0..1
    ("flat float TIFF", np.full((28, 28), 0.7)),  # keeps its brightness, not black
    ("32-bit integer TIFF", (1000 + GRADIENT * 2000).astype(np.int32) / 3000),  # zero stays black
])
def test_deep_grey_pictures_keep_their_brightness_in_a_folder_set(tmp_path, kind, expected):
    data = KINDS[kind]()
    picture = folder_pictures(tmp_path, {"a.tif": data, "b.tif": data})[0][0]
    np.testing.assert_allclose(picture, expected, atol=1e-6, rtol=0)


def test_nan_and_infinity_in_a_float_picture_do_not_blank_it(tmp_path):
    data = KINDS["float TIFF with NaN and inf"]()
    picture = folder_pictures(tmp_path, {"a.tif": data, "b.tif": data})[0][0]
    assert picture[GRADIENT > 0.9].min() == pytest.approx(1.0)  # +inf: the brightest
    assert picture[GRADIENT < 0.1].max() == pytest.approx(0.0)  # NaN: the darkest
    middle = picture[(GRADIENT >= 0.1) & (GRADIENT <= 0.9)]
    assert np.all(np.diff(middle) > 0)  # the finite pixels keep their order, strictly between
    assert 0 < middle.min() and middle.max() < 1
