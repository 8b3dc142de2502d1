"""vae.images: display scaling, and the upload/drawing preprocessing path with every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from image_samples import BAD_FILES, MNIST, encode, paper_digit, png_bomb
from vae.images import ImageInputError, image_grid, prepare_upload, to_display_image


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
    assert titles == ["As uploaded", "To grayscale", "Invert", "Isolate the strokes", "Stroke width", "Pad and scale"]
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


@pytest.mark.parametrize("orientation", [0, 1, 9, 65535])
def test_an_exif_orientation_that_changes_nothing_is_not_listed_as_applied(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    prepared = prepare_upload(encode(paper_digit(), "JPEG", exif=exif.tobytes(), quality=95), MNIST)
    assert "EXIF orientation" not in [step.title for step in prepared.steps]
    if orientation not in (0, 1):
        assert f"tag {orientation} is not one of 1-8: ignored" in prepared.steps[0].detail


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
