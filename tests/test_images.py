"""vae.images: display scaling, and the upload/drawing preprocessing path with every bad input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from vae.images import MAX_UPLOAD_BYTES, ImageInputError, image_grid, prepare_upload, to_display_image

MNIST = (1, 28, 28)


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def paper_digit(size: int = 200, offset: tuple[int, int] = (0, 0)) -> Image.Image:
    """A dark '1'-like stroke with a foot on light paper, off centre by `offset`."""
    image = Image.new("L", (size, size), 235)
    draw = ImageDraw.Draw(image)
    x, y = size // 2 + offset[0], offset[1]
    draw.line([(x, y + size * 0.2), (x, y + size * 0.8)], fill=20, width=size // 12)
    draw.line([(x - size * 0.15, y + size * 0.8), (x + size * 0.15, y + size * 0.8)], fill=20, width=size // 12)
    return image


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit PNG of width x height black pixels: ~110 KB on disk, 900 Mpx decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


BAD_FILES = {
    "empty.png": (b"", "empty"),
    "notes.png": (b"these are my notes, not a picture\n" * 20, "not an image"),
    "truncated.png": (encode(paper_digit())[:-60], "damaged or truncated"),
    "bomb.png": (png_bomb(), "decompression bomb"),
    "huge.png": (b"\x89PNG" + b"\x00" * (MAX_UPLOAD_BYTES + 1), "limit is 20 MB"),
    "blank.png": (encode(Image.new("L", (64, 64), 255)), "blank"),
}


def good_files() -> dict[str, bytes]:
    """The same digit in each awkward encoding the page must accept."""
    digit = paper_digit()
    gray16 = Image.fromarray((np.asarray(digit, dtype=np.uint16) * 257))
    assert gray16.mode.startswith("I;16")
    rgba = digit.convert("RGBA")
    rgba.putalpha(Image.new("L", digit.size, 255))
    transparent = Image.new("RGBA", digit.size, (0, 0, 0, 0))  # ink on a transparent sheet, like a drawing
    transparent.paste(Image.new("RGBA", digit.size, (0, 0, 0, 255)), mask=Image.eval(digit, lambda v: 255 - v))
    return {
        "digit.png": encode(digit),
        "digit16.png": encode(gray16),
        "digit_cmyk.jpg": encode(digit.convert("CMYK"), "JPEG"),
        "digit_cmyk.tif": encode(digit.convert("CMYK"), "TIFF"),
        "digit_palette.png": encode(digit.convert("P")),
        "digit_rgba.png": encode(rgba),
        "digit_transparent.png": encode(transparent),
        "digit.webp": encode(digit, "WEBP", lossless=True),
        "digit.bmp": encode(digit, "BMP"),
        "digit.gif": encode(digit, "GIF"),
        "animated.gif": encode(digit, "GIF", save_all=True, append_images=[Image.new("L", digit.size, 0)] * 3),
    }


def test_display_image_scales_without_blur():
    image = torch.zeros(1, 2, 2)
    image[0, 0, 0] = 1.0
    picture = to_display_image(image, width=8)
    assert picture.size == (8, 8)
    pixels = np.asarray(picture)
    assert set(np.unique(pixels)) == {0, 255}  # nearest neighbour: no grey edges
    assert image_grid(torch.rand(6, 1, 4, 4), columns=3, width=90).size[0] == 90


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_bad_file_gets_one_clear_error(name):
    data, message = BAD_FILES[name]
    with pytest.raises(ImageInputError, match=message) as caught:
        prepare_upload(data, MNIST, name)
    assert str(caught.value).startswith(name)


def test_a_header_that_claims_too_many_pixels_is_refused_before_decoding():
    # 10,000 x 5,000 = 50 Mpx: under Pillow's own bomb limits, over ours.
    with pytest.raises(ImageInputError, match="too large"):
        prepare_upload(png_bomb(10_000, 5_000), MNIST, "wide.png")


@pytest.mark.parametrize("name", sorted(good_files()))
def test_awkward_encodings_of_one_digit_all_become_the_same_mnist_input(name):
    reference = prepare_upload(good_files()["digit.png"], MNIST).x
    prepared = prepare_upload(good_files()[name], MNIST, name)
    assert prepared.x.shape == (1, 1, 28, 28) and prepared.x.dtype == torch.float32
    assert 0.0 <= prepared.x.min() and prepared.x.max() <= 1.0
    assert (prepared.x - reference).abs().mean() < 0.03  # JPEG and palette noise, nothing more
    if name == "animated.gif":
        assert "first frame" in prepared.steps[0].detail


def test_light_paper_is_inverted_cropped_and_centred_like_mnist():
    prepared = prepare_upload(encode(paper_digit(offset=(-60, 30))), MNIST)
    titles = [step.title for step in prepared.steps]
    assert titles == ["As uploaded", "To grayscale", "Invert", "Crop to content", "Pad and scale"]
    assert "light" in prepared.steps[2].detail
    digit = prepared.x[0, 0].numpy()
    assert digit[0].max() < 0.05 and digit[:, 0].max() < 0.05  # dark background, like MNIST
    ink = np.argwhere(digit > 0.05)
    assert (ink.max(0) - ink.min(0) + 1).max() <= 21  # fits MNIST's 20x20 box (antialiasing may touch one more)
    rows, cols = np.indices(digit.shape)
    centre = np.array([(rows * digit).sum(), (cols * digit).sum()]) / digit.sum()
    np.testing.assert_allclose(centre, [13.5, 13.5], atol=1.0)  # centre of mass in the middle, despite the offset


def test_a_dark_background_is_not_inverted():
    dark = Image.eval(paper_digit(), lambda v: 255 - v)
    prepared = prepare_upload(encode(dark), MNIST)
    assert "not needed" in prepared.steps[2].detail
    reference = prepare_upload(encode(paper_digit()), MNIST).x
    assert (prepared.x - reference).abs().mean() < 0.02


def test_exif_orientation_is_applied():
    upright = paper_digit()
    # Stored rotated, with the tag telling viewers to turn it back (orientation 6: rotate 90 clockwise).
    stored = upright.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    prepared = prepare_upload(encode(stored, "JPEG", exif=exif.tobytes(), quality=95), MNIST)
    assert [step.title for step in prepared.steps][1] == "EXIF orientation"
    reference = prepare_upload(encode(upright), MNIST).x
    assert (prepared.x - reference).abs().mean() < 0.03


def test_other_model_shapes_scale_proportionally():
    small = prepare_upload(encode(paper_digit()), (1, 8, 8)).x
    assert small.shape == (1, 1, 8, 8)
    ink = np.argwhere(small[0, 0].numpy() > 0.1)
    assert (ink.max(0) - ink.min(0) + 1).max() <= 7  # round(8 * 20/28) = 6, plus antialiasing
    colour = prepare_upload(encode(Image.new("RGB", (90, 60), (200, 30, 30))), (3, 32, 32))
    assert colour.x.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(colour.x[0, :, 16, 16].numpy(), [200 / 255, 30 / 255, 30 / 255], atol=0.01)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise_anything_but_image_input_error(data):
    try:
        prepared = prepare_upload(b"\x89PNG\r\n\x1a\n" + data, MNIST)
    except ImageInputError:
        return
    assert prepared.x.shape == (1, 1, 28, 28)
