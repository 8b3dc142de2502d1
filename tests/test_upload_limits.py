"""What one big upload may cost the server: shrunk before converting, a pixel limit, few at once, once per session."""

from __future__ import annotations

import io
import threading
import tracemalloc

import pytest
from PIL import Image, ImageDraw

from image_samples import MNIST, encode, paper_digit
from vae import images
from vae.images import ImageInputError, prepare_upload
from vae.upload_cache import PreparedUploads


def big_sixteen_bit_digit(side: int) -> bytes:
    """A `side` x `side` 16-bit greyscale PNG of a dark digit on light paper (a few hundred KB)."""
    picture = Image.new("I;16", (side, side), 60000)
    ImageDraw.Draw(picture).line([(side // 2, side // 5), (side // 2, 4 * side // 5)], fill=2000, width=side // 12)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def test_a_big_16_bit_png_is_shrunk_before_any_float_conversion():
    data = big_sixteen_bit_digit(4000)  # 16 Mpx: under the pixel limit
    tracemalloc.start()  # NumPy reports its buffers to tracemalloc; the old path made 0.5 GB of float64 here
    try:
        prepared = prepare_upload(data, MNIST, "scan.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 60 * 2**20, f"{peak / 2**20:.0f} MB of arrays"
    assert "4,000 x 4,000 pixels, shrunk to 512 x 512 before converting" in prepared.steps[0].detail
    assert prepared.x.shape == (1, 1, 28, 28) and float(prepared.x.max()) > 0.9


def test_the_upload_pixel_limit_refuses_a_40_megapixel_picture_from_its_header():
    with pytest.raises(ImageInputError, match=r"^scan.png: 6,324 x 6,324 pixels is too large .*limit 24 million"):
        prepare_upload(big_sixteen_bit_digit(6324), MNIST, "scan.png")


def test_a_big_jpeg_is_decoded_at_a_reduced_scale():
    photo = encode(paper_digit(size=3000).convert("RGB"), "JPEG", quality=90)
    prepared = prepare_upload(photo, MNIST, "photo.jpg")
    assert "3,000 x 3,000 pixels, shrunk to" in prepared.steps[0].detail
    reference = prepare_upload(encode(paper_digit()), MNIST).x
    assert (prepared.x - reference).abs().mean() < 0.03


def test_at_most_two_uploads_are_prepared_at_once(monkeypatch):
    # Two preparations are in progress (their slots taken); a third waits until one ends.
    for _ in range(images.PREPARING_AT_ONCE):
        assert images._preparing.acquire(timeout=5)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (prepare_upload(encode(paper_digit()), MNIST), done.set()), daemon=True)
    try:
        worker.start()
        assert not done.wait(timeout=1.0), "a third upload was prepared while two were in progress"
    finally:
        for _ in range(images.PREPARING_AT_ONCE):
            images._preparing.release()
    assert done.wait(timeout=120)


def test_a_session_prepares_each_content_once_and_keeps_a_bounded_number(monkeypatch):
    calls = []
    prepare = images.prepare_image
    monkeypatch.setattr(images, "prepare_image", lambda *args, **kwargs: calls.append(1) or prepare(*args, **kwargs))
    session = PreparedUploads(size=2)
    digit = encode(paper_digit())
    first = session.prepare(digit, MNIST, "a.png")
    assert session.prepare(digit, MNIST, "renamed.png") is first
    assert len(calls) == 1
    blank = encode(Image.new("L", (64, 64), 255))
    for name in ("blank.png", "blank again.png"):  # a refused file is not decoded again either; its message names it
        with pytest.raises(ImageInputError, match=f"^{name}: The image is blank"):
            session.prepare(blank, MNIST, name)
    assert len(calls) == 2
    session.prepare(digit, (1, 8, 8), "a.png")  # another model's input shape is another preparation
    session.prepare(digit, MNIST, "a.png")  # dropped: only the 2 most recent are kept
    assert len(calls) == 4
