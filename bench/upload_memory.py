"""What one big upload costs the server: peak memory and time to prepare it for a model.

The file is issue 11's: a 16-bit greyscale PNG of 6,324 x 6,324 pixels (a digit on flat paper,
about 90 KB on disk, 40 Mpx decoded). Each case runs in a fresh Python process, so the figure is
that process's peak resident memory (ru_maxrss) above what it held once the libraries were
imported and the file was read; time is wall clock for the preparation alone.

    python bench/upload_memory.py                 # this checkout's vae/
    python bench/upload_memory.py --code DIR      # another checkout's vae/ (e.g. the old code)

Cases: the file as it is (refused by the pixel limit where there is one below 40 Mpx); the same
file with the limit lifted (to see the shrink-before-converting alone); a 4,899 x 4,899 file (24
Mpx, the upload limit); and three of the big files at once from three threads (a class uploading
together).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, threading, time
import vae.images as images

path, lift, copies = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
data = open(path, "rb").read()
if lift:
    images.MAX_PIXELS = 10**9
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome = []
def one():
    try:
        images.prepare_upload(data, (1, 28, 28), "big.png")
        outcome.append("prepared")
    except images.ImageInputError as error:
        outcome.append("refused: " + str(error)[:70])
start = time.perf_counter()
threads = [threading.Thread(target=one) for _ in range(copies)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kb": len(data) / 1024, "extra_mib": (peak - base) / 1024, "seconds": seconds, "outcome": outcome[0]}))
"""


def big_png(side: int, folder: Path) -> Path:
    """A side x side 16-bit PNG of a dark digit (a '1' with a foot) on light paper."""
    from PIL import Image, ImageDraw

    path = folder / f"big{side}.png"
    if not path.exists():
        picture = Image.new("I;16", (side, side), 60000)
        draw = ImageDraw.Draw(picture)
        draw.line([(side // 2, side // 5), (side // 2, 4 * side // 5)], fill=2000, width=side // 12)
        draw.line([(side // 3, 4 * side // 5), (2 * side // 3, 4 * side // 5)], fill=2000, width=side // 12)
        picture.save(path, "PNG", compress_level=9)
    return path


def run(code: Path, path: Path, lift: bool, copies: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), "1" if lift else "0", str(copies)],
                         env=env, capture_output=True, text=True, check=True, cwd=code)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose vae/ is measured")
    args = parser.parse_args()
    cases = [("6,324 x 6,324 16-bit PNG", 6324, False, 1), ("same, pixel limit lifted", 6324, True, 1),
             ("4,898 x 4,898 (just under 24 Mpx)", 4898, False, 1), ("three 6,324 x 6,324 at once, limit lifted", 6324, True, 3)]
    print(f"code: {args.code}")
    folder = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    for title, side, lift, copies in cases:
        figure = run(args.code, big_png(side, folder), lift, copies)
        print(f"{title:45s} {figure['kb']:6.0f} KB file  +{figure['extra_mib']:7.0f} MiB peak  "
              f"{figure['seconds']:6.2f} s  {figure['outcome']}")


if __name__ == "__main__":
    main()
