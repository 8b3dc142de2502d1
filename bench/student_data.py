"""Costs of what a student can send: hostile config.json folders in the checkpoints root, and uploads.

    python bench/student_data.py

Prints, for each hostile config.json, the time to list the folder and refuse it (best of 5), and
for two uploads (many small pictures; a few large photos) the time to check, decode and store
them, and then to load them as a data set. Scratch folders only; nothing is kept.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402

from vae.checkpoints import list_checkpoints  # noqa: E402
from vae.student_data import store_upload  # noqa: E402

GOOD = ROOT / "checkpoints" / "digits-mlp-z2"


def hostile_configs() -> dict[str, str]:
    config = json.loads((GOOD / "config.json").read_text())
    text = json.dumps(config)
    padding = 8 * 1024 * 1024 - 200  # just under the 8 MB cap
    return {
        "nested 100,000 deep": '{"model": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "5,000-digit number": text.replace('"latent_dim": 2', '"latent_dim": ' + "9" * 5000),
        '"beta": "high"': text.replace('"beta": 1.0', '"beta": "high"', 1),
        "8 MB of one list": text[:-1] + ', "pad": [' + ",".join(["0"] * ((padding - len(text)) // 2)) + "]}",
        "8 MB of one-item lists": text[:-1] + ', "pad": [' + ",".join(["[0]"] * ((padding - len(text)) // 4)) + "]}",
        "valid (shipped)": text,
    }


def best_of(function, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def picture(size: int, seed: int) -> bytes:
    image = Image.new("RGB", (size, size), (seed * 7 % 255, 90, 160))
    ImageDraw.Draw(image).ellipse([size // 5, size // 4, size * 3 // 4, size * 4 // 5], fill=(250, 250, 250))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    scratch = Path(tempfile.mkdtemp())
    try:
        print("config.json in the checkpoints root: list and refuse (best of 5)")
        for name, text in hostile_configs().items():
            root = scratch / "checkpoints" / name.replace(" ", "_").replace('"', "")
            folder = root / "victim"
            shutil.copytree(GOOD, folder, ignore=shutil.ignore_patterns("projections"))
            (folder / "config.json").write_text(text)
            seconds = best_of(lambda: list_checkpoints(root))
            error = list_checkpoints(root)[0].error or "usable"
            print(f"  {name:22s} {len(text) / 1e6:5.2f} MB  {seconds * 1000:8.1f} ms  {error[:90]}")
        print("uploads: check, decode once, store; then load as a data set")
        from vae.datasets import load_dataset

        import os

        os.environ["LATENT_LAB_UPLOADS"] = str(scratch / "uploads")
        for label, count, size in (("500 pictures of 64x64", 500, 64), ("20 photos of 3000x3000 (9 Mpx)", 20, 3000)):
            files = [(f"set/{'ab'[i % 2]}/{i}.jpg", picture(size, i)) for i in range(count)]
            megabytes = sum(len(content) for _, content in files) / 2**20
            started = time.perf_counter()
            stored = store_upload(files, "set")
            stored_seconds = time.perf_counter() - started
            started = time.perf_counter()
            load_dataset(stored.dataset_name())
            print(f"  {label:32s} {megabytes:6.1f} MB  stored in {stored_seconds:5.2f} s, loaded in {time.perf_counter() - started:5.2f} s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
