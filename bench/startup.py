"""App start-up time and server memory.

1. From spawning `streamlit run app.py` to the Home page interactive in Chromium (the script has
   finished: `[data-testid="stApp"][data-test-script-state="notRunning"]`, the title and the
   sidebar's model picker are on screen). Chromium is started before the clock starts; each run
   uses a fresh server. Target: under 5 s.
2. The server's resident memory (RSS, from /proc): right after start, with the Home page open and
   its model loaded, and while a training run started from the Train page is going (peak).

    python bench/startup.py [--runs 3] [--train-seconds 20]

Loopback only; checkpoints go to a temporary copy, never the repo's checkpoints/ folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vae.serve_local import APP_IDLE, CHROMIUM, CHROMIUM_FLAGS, AppServer, copy_shipped_checkpoints  # noqa: E402


def time_first_page(browser, scratch: Path, run: int, extra_env: dict | None = None) -> dict:
    log = scratch / f"server-{run}.log"
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    started = time.perf_counter()
    server = AppServer(copy_shipped_checkpoints(scratch / f"checkpoints-{run}"), log, extra_env, wait=False)
    url = server.url
    try:
        server.wait_healthy(120)
        healthy = time.perf_counter() - started
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector('[data-testid="stApp"]')
        frontend = time.perf_counter() - started  # Streamlit's frontend is up; the script run starts now
        page.get_by_role("heading", name="Latent Lab").wait_for()
        page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Checkpoint").wait_for()
        page.wait_for_selector(APP_IDLE)
        interactive = time.perf_counter() - started
        return {"healthy_s": healthy, "frontend_s": frontend, "interactive_s": interactive}
    finally:
        context.close()
        server.stop()


def memory_while_training(browser, scratch: Path, train_seconds: float) -> dict:
    log = scratch / "server-memory.log"
    server = AppServer(copy_shipped_checkpoints(scratch / "checkpoints-memory"), log, wait=False)
    url = server.url
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        server.wait_healthy(120)
        figures = {"rss_started_mb": server.rss_mb()[0]}
        page.goto(url)
        page.get_by_role("heading", name="Latent Lab").wait_for()
        page.wait_for_selector(APP_IDLE)
        figures["rss_home_mb"] = server.rss_mb()[0]
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Reconstructions").click()
        page.get_by_role("heading", name="Reconstructions").wait_for()
        page.wait_for_selector(APP_IDLE)
        figures["rss_model_loaded_mb"] = server.rss_mb()[0]
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Train").click()
        page.get_by_role("heading", name="Train a VAE").wait_for()
        page.wait_for_selector(APP_IDLE)
        # The defaults: mnist5k, mlp, z = 2, 5 epochs; enough epochs that it is still going when we stop.
        page.get_by_label("Epochs", exact=True).fill("200")
        page.get_by_label("Checkpoint name", exact=True).fill("bench-memory-run")
        page.get_by_role("button", name="Start training").click()
        page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]').first.wait_for()
        peak = 0.0
        samples = []
        deadline = time.monotonic() + train_seconds
        while time.monotonic() < deadline:
            current, _ = server.rss_mb()
            samples.append(current)
            peak = max(peak, current)
            page.wait_for_timeout(250)  # sampling interval; the page keeps updating meanwhile
        progress = page.locator('[data-testid="stProgress"]').first.inner_text()
        figures.update(rss_training_peak_mb=peak, rss_training_median_mb=statistics.median(samples),
                       rss_hwm_mb=server.rss_mb()[1], progress_at_end=progress)
        page.get_by_role("button", name="Stop").click()
        page.locator('[data-testid="stAlert"]').filter(has_text="Stopped").wait_for()
        return figures
    finally:
        context.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh servers to time (default 3)")
    parser.add_argument("--train-seconds", type=float, default=20.0, help="how long to sample memory while training")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory(prefix="latent-lab-bench-") as temporary, sync_playwright() as playwright:
        scratch = Path(temporary)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            # app.py starts umap-learn's numba warm-up on a thread at the first run; it competes with
            # the first page for the 2 cores, so the figure is taken with it on (as shipped) and off.
            for label, extra_env in (("UMAP warm-up on (as shipped)", {}),
                                     ("UMAP warm-up off (LATENT_LAB_UMAP_WARMUP=0)", {"LATENT_LAB_UMAP_WARMUP": "0"})):
                timings = [time_first_page(browser, scratch, f"{len(extra_env)}-{run}", extra_env) for run in range(args.runs)]
                print(label)
                for run, timing in enumerate(timings, 1):
                    print(f"  run {run}: server healthy {timing['healthy_s']:.2f} s, frontend up {timing['frontend_s']:.2f} s, "
                          f"Home interactive in Chromium {timing['interactive_s']:.2f} s")
                interactive = [timing["interactive_s"] for timing in timings]
                print(f"  first page interactive: median {statistics.median(interactive):.2f} s, "
                      f"best {min(interactive):.2f} s, worst {max(interactive):.2f} s (target < 5 s)")
            memory = memory_while_training(browser, scratch, args.train_seconds)
        finally:
            browser.close()
    print(f"server RSS right after start:              {memory['rss_started_mb']:.0f} MiB")
    print(f"server RSS, Home open (reads only JSON):    {memory['rss_home_mb']:.0f} MiB")
    print(f"server RSS, Reconstructions, model loaded:  {memory['rss_model_loaded_mb']:.0f} MiB")
    print(f"server RSS while training mnist5k (median): {memory['rss_training_median_mb']:.0f} MiB")
    print(f"server RSS while training mnist5k (peak):   {memory['rss_training_peak_mb']:.0f} MiB (VmHWM {memory['rss_hwm_mb']:.0f} MiB)")
    print(f"training progress when sampling ended:      {memory['progress_at_end']}")


if __name__ == "__main__":
    main()
