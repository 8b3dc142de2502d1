"""Sample uploads shared by the image and page tests: a digit on paper, a PNG bomb, each bad file."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image, ImageDraw

from vae.images import MAX_UPLOAD_BYTES

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


def lit_unevenly(image: Image.Image, light: str) -> Image.Image:
    """A grey picture under a phone's uneven light: a gradient, a vignette, or a hard shadow over a corner."""
    pixels = np.asarray(image, dtype=np.float64)
    rows, cols = np.indices(pixels.shape) / max(pixels.shape)
    if light == "gradient":
        gain = 1.0 - 0.6 * cols  # full light on the left, 40% on the right
    elif light == "vignette":
        gain = 1.0 - 0.55 * np.hypot(rows - 0.5, cols - 0.5) / np.hypot(0.5, 0.5)
    else:  # "shadow": a hand's shadow with a hard edge over the top-left, reaching the stroke
        gain = np.where(rows + cols < 0.75, 0.45, 1.0)
    return Image.fromarray(np.clip(pixels * gain, 0, 255).astype(np.uint8))


def drawn_seven(height: int, brush: int = 18, canvas: int = 280) -> bytes:
    """A 7 drawn with a round `brush` on the Draw tab's white canvas, `height` pixels tall (its PNG bytes, RGBA)."""
    image = Image.new("RGBA", (canvas, canvas), (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, top = (canvas - 0.7 * height) / 2, (canvas - height) / 2
    points = [(left, top), (left + 0.7 * height, top), (left + 0.25 * height, top + height)]
    draw.line(points, fill=(0, 0, 0, 255), width=brush, joint="curve")
    for x, y in (points[0], points[-1]):
        draw.ellipse([x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2], fill=(0, 0, 0, 255))
    return encode(image)


def drawn_dot(brush: int = 18, canvas: int = 280) -> bytes:
    """One click on the Draw tab: a round dot the brush's size."""
    image = Image.new("RGBA", (canvas, canvas), (255, 255, 255, 255))
    centre = canvas / 2
    ImageDraw.Draw(image).ellipse([centre - brush / 2, centre - brush / 2, centre + brush / 2, centre + brush / 2], fill=(0, 0, 0, 255))
    return encode(image)


def not_digit_like() -> dict[str, Image.Image]:
    """Pictures whose ink is not one digit: a line of writing, a ruled line across the page, hatching."""
    writing = Image.new("L", (300, 200), 235)
    draw = ImageDraw.Draw(writing)
    for i in range(6):  # six separate short words
        draw.line([(20 + 45 * i, 90), (50 + 45 * i, 110)], fill=20, width=5)
    ruled = paper_digit()
    ImageDraw.Draw(ruled).line([(0, 40), (199, 40)], fill=60, width=3)
    hatching = Image.new("L", (200, 200), 235)
    draw = ImageDraw.Draw(hatching)
    for i in range(0, 200, 10):
        draw.line([(40, 40 + i * 0.6), (160, 40 + i * 0.6)], fill=20, width=2)
        draw.line([(40 + i * 0.6, 40), (40 + i * 0.6, 160)], fill=20, width=2)
    return {"writing": writing, "ruled line": ruled, "hatching": hatching}


# ---- a student's folder of pictures, as uploaded (tests/test_student_data.py, tests/test_pages_student_data.py)

def picture(shade: int, size: tuple[int, int] = (20, 20), kind: str = "PNG") -> bytes:
    image = Image.new("L", size, 0)
    ImageDraw.Draw(image).ellipse([4, 4, 4 + shade % 12, 4 + shade % 12], fill=255)
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def pet_files(top: str = "pets") -> list[tuple[str, bytes]]:
    files = [(f"{top}/cats/{i}.png", picture(i)) for i in range(5)] + [(f"{top}/dogs/deep/{i}.png", picture(20 + i)) for i in range(4)]
    return files + [(f"{top}/.DS_Store", b"\0\1"), (f"{top}/readme.txt", b"hi"), (f"{top}/dogs/broken.png", b"\x89PNG not really")]


def zipped(files, **extra) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            archive.writestr(name, content)
        for name, (content, attributes) in extra.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = attributes
            archive.writestr(info, content)
    return buffer.getvalue()
