"""Property-based fuzzing of the one upload path: whatever the bytes, the only exception that
leaves preprocessing is ImageInputError, and whatever comes out is a valid model input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vae.images import ImageInputError, prepare_upload

SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32)]
MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "I;16B", "F"]
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(data: bytes, shape) -> None:
    try:
        prepared = prepare_upload(data, shape, name="fuzz")
    except ImageInputError as error:
        assert str(error).startswith("fuzz"), "the message names the file"
        return
    x = prepared.x
    assert tuple(x.shape) == (1, *shape)
    assert bool(((x >= 0) & (x <= 1)).all()) and bool(x.isfinite().all())


@FUZZ
@given(data=st.binary(max_size=4096), shape=st.sampled_from(SHAPES))
def test_random_bytes_only_ever_raise_the_projects_error(data, shape):
    _check(data, shape)


@st.composite
def encoded_images(draw):
    mode = draw(st.sampled_from(MODES))
    big = draw(st.booleans())
    width = draw(st.integers(1, 1500 if big else 40))
    height = draw(st.integers(1, 1500 if big else 40))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    if draw(st.booleans()):  # a digit-like blob on a flat background, so some inputs get all the way through
        pixels[:] = 255
        pixels[height // 4: 3 * height // 4 + 1, width // 3: 2 * width // 3 + 1] = 0
    image = Image.fromarray(pixels, "RGB").convert(mode) if mode not in ("I;16", "I;16B") else \
        Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).convert(mode)
    fmt = draw(st.sampled_from(FORMATS))
    options = {}
    if draw(st.booleans()) and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 9))  # orientation, including out-of-range values
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt, **options)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # Pillow cannot write this mode in this format; nothing to upload
    data = buffer.getvalue()
    if draw(st.booleans()):  # damage it: truncate, or flip a byte
        cut = draw(st.integers(0, max(len(data) - 1, 0)))
        data = data[:cut] if draw(st.booleans()) else data[:cut] + bytes([data[cut] ^ 0xFF]) + data[cut + 1:]
    return data


@FUZZ
@given(data=encoded_images(), shape=st.sampled_from(SHAPES))
def test_valid_and_damaged_images_of_every_mode_and_size(data, shape):
    if data is not None:
        _check(data, shape)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny real PNG whose header claims width x height (a decompression bomb's calling card)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@FUZZ
@given(width=st.integers(1, 200_000), height=st.integers(1, 200_000))
def test_headers_claiming_huge_sizes_are_refused_without_decoding(width, height):
    _check(_png_claiming(width, height), (1, 28, 28))


def test_thirty_thousand_square_bomb_is_refused_with_a_clear_message():
    with pytest.raises(ImageInputError, match="too large|bomb"):
        prepare_upload(_png_claiming(30_000, 30_000), (1, 28, 28), name="bomb.png")
