"""The latent pad's decoder alone, in CPU time: milliseconds of CPU per decode in Node's V8.

    python bench/latent_pad_decode.py [--models mnist5k-mlp-z2 mnist5k-conv-z16] [--decodes 300]

Runs vae/components/latent_pad.js (the text the page runs) in Node (V8, Chromium's JavaScript
engine) on each shipped model's decoder as the app exports it, and times random codes with
process.cpuUsage(): CPU time, not wall time, so a machine busy with other work changes the figure
far less than it changes bench/latent_pad_fps.py's (which times the real page). Needs `node`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vae import generate  # noqa: E402
from vae.checkpoints import SHIPPED_ROOT, load_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMER = """
const [module, dataFile, count] = process.argv.slice(2);
const pad = await import(module);
const data = JSON.parse((await import("node:fs")).readFileSync(dataFile, "utf8"));
const decoder = pad.buildDecoder(data.spec, pad.base64ToFloat32(data.weights), data.latent_dim);
const z = new Float64Array(decoder.latentDim);
for (let i = 0; i < 30; i++) decoder.decode(z);  // let the JIT settle
const times = [];
for (let i = 0; i < Number(count); i++) {
  for (let j = 0; j < z.length; j++) z[j] = 4 * Math.random() - 2;
  const before = process.cpuUsage();
  decoder.decode(z);
  const used = process.cpuUsage(before);
  times.push((used.user + used.system) / 1000);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ engine: decoder.engine, mean: times.reduce((a, b) => a + b, 0) / times.length,
                             median: times[times.length >> 1] }));
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mnist5k-mlp-z2", "mnist5k-conv-z16"])
    parser.add_argument("--decodes", type=int, default=300)
    args = parser.parse_args()
    print(f"{'model':<20} {'engine':<7} {'CPU ms per decode (mean)':>25} {'(median)':>9}")
    with tempfile.TemporaryDirectory() as scratch:
        timer = Path(scratch) / "timer.mjs"
        timer.write_text(TIMER)
        for name in args.models:
            data_file = Path(scratch) / f"{name}.json"
            data_file.write_text(json.dumps(generate.browser_decoder(load_checkpoint(SHIPPED_ROOT / name).model).as_data()))
            module = (ROOT / "vae" / "components" / "latent_pad.js").as_uri()
            result = json.loads(subprocess.run(["node", str(timer), module, str(data_file), str(args.decodes)],
                                               check=True, capture_output=True, text=True).stdout)
            print(f"{name:<20} {result['engine']:<7} {result['mean']:>25.2f} {result['median']:>9.2f}")


if __name__ == "__main__":
    main()
