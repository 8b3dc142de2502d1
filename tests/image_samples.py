"""Sample uploads shared by the image and page tests: a digit on paper, a PNG bomb, each bad file."""

from __future__ import annotations

import io
import struct
import zlib

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
