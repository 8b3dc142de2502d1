"""Latent pad speed in headless Chromium: frames per second while dragging, ms per decode.

    python bench/latent_pad_fps.py [--models mnist5k-mlp-z2 mnist5k-conv-z16] [--seconds 3]

For each model it starts `streamlit run app.py` over a scratch folder holding only that
checkpoint, opens Generate in Chromium and measures, on the real page:
  drag fps     frames drawn per second while Playwright holds the first slider's thumb and sweeps
               it back and forth with the mouse (one input event per mouse move; a frame is one
               decode + canvas draw);
  vsync fps    frames per second when one input event arrives on every animation frame, the way a
               person's drag is delivered (capped by the display rate, 60 Hz headless);
  engine       the decoder the page runs (js: the one plain-JavaScript decoder);
  frame ms     mean time of one frame's work during the vsync run (decode + canvas draw);
  decode ms    time in the decoder per frame (mean and 95th percentile over a burst of 300 decodes
               of random codes), and the frames per second that this alone would allow.
Target (DESIGN.md): at least 60 frames per second for both shipped models on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vae.serve_local import APP_IDLE, CHROMIUM, AppServer, copy_shipped_checkpoints  # noqa: E402


VSYNC_LOOP = """(seconds) => new Promise((resolve) => {
    const slider = document.querySelector('[data-testid="stBidiComponentIsolated"]')
        ? [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
              .map((host) => host.shadowRoot?.querySelector('.lp-sliders input')).find(Boolean)
        : document.querySelector('.lp-sliders input');
    const stats = globalThis.__latentPadStats, startFrames = stats.frames, startMs = stats.frameMs;
    const start = performance.now();
    let tick = 0;
    const step = (now) => {
        if (now - start >= seconds * 1000) {
            const frames = stats.frames - startFrames;
            resolve({ frames, seconds: (now - start) / 1000, frameMs: (stats.frameMs - startMs) / frames });
            return;
        }
        slider.value = String(3 * Math.sin(tick++ / 10));
        slider.dispatchEvent(new Event('input', { bubbles: true }));
        requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
})"""

DECODE_BURST = """(count) => {
    const decoders = [...globalThis.__latentLabDecoders.decoders.values()];
    const decoder = decoders[decoders.length - 1];
    const z = new Float64Array(decoder.latentDim), times = [];
    for (let i = 0; i < 30; i++) decoder.decode(z);  // let the JIT settle
    for (let i = 0; i < count; i++) {
        for (let j = 0; j < z.length; j++) z[j] = 4 * Math.random() - 2;
        const t0 = performance.now();
        decoder.decode(z);
        times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { mean: times.reduce((a, b) => a + b, 0) / count, p95: times[Math.floor(0.95 * count)] };
}"""


def measure(model: str, seconds: float, browser) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        checkpoints = copy_shipped_checkpoints(Path(scratch) / "checkpoints", with_maps=True, only=(model,))
        server = AppServer(checkpoints, Path(scratch) / "streamlit.log")
        url = server.url
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(90_000)
            page.goto(url)
            page.wait_for_selector(APP_IDLE)
            page.locator("[data-testid=stSidebarNavLink]", has_text="Generate").click()
            page.wait_for_selector(APP_IDLE)
            page.wait_for_selector('.lp[data-ready="true"]', state="attached")

            slider = page.locator(".lp-sliders input").first.bounding_box()
            y = slider["y"] + slider["height"] / 2
            left, right = slider["x"] + 4, slider["x"] + slider["width"] - 4
            frames_before = int(page.locator(".lp-image").get_attribute("data-frames"))
            page.mouse.move(left, y)
            page.mouse.down()
            moves, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                for x in (right, left):
                    page.mouse.move(x, y, steps=25)
                    moves += 25
            elapsed = time.perf_counter() - started
            frames = int(page.locator(".lp-image").get_attribute("data-frames")) - frames_before
            page.mouse.up()
            page.wait_for_selector(APP_IDLE)

            engine = page.locator(".lp-image").get_attribute("data-engine")
            vsync = page.evaluate(VSYNC_LOOP, seconds)
            burst = page.evaluate(DECODE_BURST, 300)
            context.close()
        finally:
            server.stop()
    return {
        "model": model, "engine": engine, "drag_fps": frames / elapsed, "mouse_moves_per_s": moves / elapsed,
        "vsync_fps": vsync["frames"] / vsync["seconds"], "frame_ms": vsync["frameMs"], "decode_ms": burst["mean"], "decode_p95_ms": burst["p95"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mnist5k-mlp-z2", "mnist5k-conv-z16"])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"Chromium {CHROMIUM}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        print(f"{'model':<20} {'engine':<10} {'drag fps':>9} {'(moves/s)':>10} {'vsync fps':>10} {'frame ms':>9} {'decode ms':>10} {'p95 ms':>7} {'decode-only fps':>16}")
        for model in args.models:
            r = measure(model, args.seconds, browser)
            print(f"{r['model']:<20} {r['engine']:<10} {r['drag_fps']:>9.0f} {r['mouse_moves_per_s']:>10.0f} {r['vsync_fps']:>10.1f} {r['frame_ms']:>9.2f} "
                  f"{r['decode_ms']:>10.2f} {r['decode_p95_ms']:>7.2f} {1000 / r['decode_ms']:>16.0f}")
        browser.close()


if __name__ == "__main__":
    main()
