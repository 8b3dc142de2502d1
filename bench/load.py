"""A class on one server: N real Chromium sessions visit the app at once while one of them trains.

    python bench/load.py --sessions 10

Starts `streamlit run app.py` on 127.0.0.1 (loopback only) over a scratch copy of the shipped
checkpoints, then drives N Playwright contexts in headless Chromium through a visit: open the
app, switch models, Latent map with UMAP, drag the latent pad, upload an image, Reconstructions.
Session 0 also starts a short training run on the Train page and waits for it to be saved.
`--abuser` adds one more session that misbehaves meanwhile (queue flooding: Start clicked 40 times
with 10,000 epochs; a hostile upload: a 6,324 x 6,324 16-bit PNG of 77 KB, three times; many
reruns: 60 clicks on a widget without waiting); `--both` runs the class without it, then with it,
each on a fresh server, and prints both. The percentiles are the ten students' steps only.
Bounded: every wait has a timeout and the whole run a deadline. Prints per-step p50/p95, the
errors seen, the CPU time the server and the simulated browsers took, the server's peak RSS, and
one summary line at the end. The shipped models' maps are served from the caches shipped beside
them, as a fresh checkout does; `--cold-maps` leaves those out, so the class waits for UMAP.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vae.serve_local import APP_IDLE, CHROMIUM, CHROMIUM_FLAGS, AppServer, copy_shipped_checkpoints  # noqa: E402

STEP_TIMEOUT_MS = 120_000
MAP_MODEL = "mnist5k-conv-z16"  # a 16-D latent, so the map really runs UMAP
PAD_READY = '.lp[data-ready="true"]'
HEADINGS = {"Train": "Train a VAE", "Latent map": "Latent map", "Generate": "Generate", "Upload & draw": "Upload & draw",
            "Reconstructions": "Reconstructions"}
CHROMIUM_BINARY = b"/usr/lib/chromium/chromium"  # what /usr/bin/chromium (a shell script) runs


def digit_png() -> bytes:
    image = Image.new("L", (96, 96), 255)
    ImageDraw.Draw(image).ellipse((28, 14, 68, 82), outline=0, width=9)  # a zero, dark on light
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def hostile_png() -> bytes:
    """A 6,324 x 6,324 16-bit greyscale PNG of about 77 KB: 40 Mpx of one colour compress to nothing."""
    buffer = io.BytesIO()
    Image.new("I;16", (6324, 6324), 3000).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def cpu_seconds(pids) -> float:
    """User + system CPU time of processes and of their children already waited for (closed renderers)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


def chromium_pids() -> list[int]:
    """Top-level Chromium processes (the browser; its renderers are its children, counted in cutime once closed,
    and the live ones listed too)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(CHROMIUM_BINARY):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class Session:
    def __init__(self, number: int, browser, url: str, timings: dict, errors: list, screenshots: Path | None):
        self.number, self.browser, self.url, self.timings, self.errors = number, browser, url, timings, errors
        self.screenshots = screenshots
        self.closing = False

    async def step(self, name: str, action) -> None:
        started = time.perf_counter()
        try:
            await action()
        except Exception as error:  # a failed step is an error to report, not a crash of the bench
            self.errors.append(f"session {self.number}, {name}: {type(error).__name__}: {' '.join(str(error).split())[:300]}")
            if self.screenshots:
                await self.page.screenshot(path=str(self.screenshots / f"session{self.number}-{name.split()[0]}.png"), full_page=True)
            return
        self.timings[name].append(time.perf_counter() - started)
        shown = await self.page.locator('[data-testid="stException"]').count()
        if shown:
            text = await self.page.locator('[data-testid="stException"]').first.inner_text()
            self.errors.append(f"session {self.number}, {name}: exception shown: {text.splitlines()[0][:160]}")

    async def idle(self) -> None:
        await self.page.wait_for_selector(APP_IDLE, timeout=STEP_TIMEOUT_MS)

    async def go(self, title: str) -> None:
        await self.page.locator("[data-testid=stSidebarNavLink]", has_text=title).click()
        # The app is idle before the new page's run starts too: wait for the page's own heading first.
        await self.page.locator("h1").filter(has_text=HEADINGS[title]).first.wait_for()
        await self.idle()

    async def choose_model(self, name: str) -> None:
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        picker = self.page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
        deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            await picker.click()
            try:
                await self.page.get_by_role("option").filter(has_text=name).first.click(timeout=15_000)
            except PlaywrightTimeout:
                # A rerun closed the list under the mouse (session 0's own run finishing selects the new
                # model): open it again, as a person would.
                continue
            await self.idle()
            shown = await picker.evaluate("e => e.innerText + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' ')")
            if name in shown:
                return
        raise TimeoutError(f"the sidebar never showed {name} chosen")

    async def run(self, train: bool, png: bytes) -> None:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = await context.new_page()
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        self.page.on("pageerror", lambda error: self.errors.append(f"session {self.number}: page error: {error}"))

        def watch(socket) -> None:
            if "_stcore/stream" in socket.url:
                socket.on("close", lambda _: None if self.closing else self.errors.append(f"session {self.number}: websocket closed"))

        self.page.on("websocket", watch)
        try:
            await self.step("open", self._open)
            if train:
                await self.step("start training", self._start_training)
            await self.step("switch model", lambda: self.choose_model(MAP_MODEL))
            await self.step("latent map (PCA)", self._latent_map)
            await self.step("map to UMAP", self._umap)
            await self.step("drag latent pad", self._drag_pad)
            await self.step("upload image", lambda: self._upload(png))
            await self.step("reconstructions", lambda: self.go("Reconstructions"))
            if train:
                await self.step("training saved", self._training_saved)
        finally:
            self.closing = True
            await context.close()

    async def _open(self) -> None:
        await self.page.goto(self.url, timeout=STEP_TIMEOUT_MS)
        await self.idle()

    async def _start_training(self) -> None:
        await self.go("Train")
        data_set = self.page.locator('[data-testid="stSelectbox"]').filter(has_text="Data set")
        await data_set.click()
        await self.page.get_by_role("option", name="scikit-learn 8x8 digits (embedded)").click()
        await self.idle()
        await self.page.get_by_label("Epochs", exact=True).fill("3")
        await self.page.get_by_label("Checkpoint name", exact=True).fill(f"load-run-{int(time.time())}")
        await self.page.get_by_role("button", name="Start training").click()
        # A 3-epoch digits run can finish before the first progress bar is drawn: either will do.
        await self.page.locator('[data-testid="stProgress"]').or_(self.page.get_by_text("Saved as")).first.wait_for()

    async def _training_saved(self) -> None:
        await self.go("Train")
        await self.page.get_by_text("Saved as").first.wait_for(timeout=STEP_TIMEOUT_MS * 3)

    async def _latent_map(self) -> None:
        await self.go("Latent map")  # a 16-D latent opens on PCA
        await self.page.locator('[data-testid="stPlotlyChart"]').first.wait_for()

    async def _umap(self) -> None:
        method = self.page.locator('[data-testid="stSelectbox"]').filter(has_text="Projection")
        await method.click()
        await self.page.get_by_role("option").filter(has_text="UMAP").first.click()
        await self.page.get_by_text("UMAP with", exact=False).first.wait_for(timeout=STEP_TIMEOUT_MS)
        await self.page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
        await self.idle()

    async def _drag_pad(self) -> None:
        await self.go("Generate")
        await self.page.wait_for_selector(PAD_READY, state="attached", timeout=STEP_TIMEOUT_MS)
        box = await self.page.locator(".lp-sliders input").first.bounding_box()
        y = box["y"] + box["height"] / 2
        await self.page.mouse.move(box["x"] + box["width"] / 2, y)
        await self.page.mouse.down()
        await self.page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=20)
        await self.page.mouse.up()
        await self.page.get_by_text("Your code").wait_for()
        await self.idle()

    async def _upload(self, png: bytes) -> None:
        await self.go("Upload & draw")
        await self.page.locator('input[type="file"]').first.set_input_files(
            files=[{"name": f"zero-{self.number}.png", "mimeType": "image/png", "buffer": png}])
        # Not the uploader's own file chip (drawn before the upload's rerun is even requested): the report's heading.
        await self.page.locator("h3").filter(has_text=f"zero-{self.number}.png").first.wait_for()
        await self.idle()


class Abuser(Session):
    """One session doing what a student with the URL and bad intentions can: flood, upload a bomb, rerun."""

    async def run(self, png: bytes) -> None:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = await context.new_page()
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        try:
            await self.step("open", self._open)
            await self.step("flood the queue", self._flood)
            await self.step("hostile upload", lambda: self._hostile_upload(png))
            await self.step("many reruns", self._reruns)
        finally:
            self.closing = True
            await context.close()

    async def _flood(self) -> None:
        """Start clicked 40 times with 10,000 epochs, each time a fresh name; counts the Starts refused at once."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        await self.go("Train")
        self.flood_messages = set()
        form = self.page.locator('[data-testid="stForm"]')
        # By the widgets' keys (Streamlit's st-key-<key> class), the labels as a fallback: the form has other
        # fields with "epochs" in their label (KL warm-up epochs) and may grow more.
        epochs = self.page.locator(".st-key-train_epochs input").or_(form.get_by_label("Epochs", exact=True)).first
        name_field = self.page.locator(".st-key-train_name input").or_(form.get_by_label("Checkpoint name", exact=True)).first
        start = self.page.locator(".st-key-train_start button").or_(form.get_by_role("button", name="Start training")).first
        new_run = self.page.locator("details").filter(has=self.page.locator("summary", has_text="New run")).first
        for attempt in range(40):
            try:
                await epochs.wait_for(state="visible", timeout=10_000)
            except PlaywrightTimeout:
                # The "New run" expander folds away while this session's run is on: open it, as a person would,
                # and only if it is closed (a click on an open one, still drawing, would fold it).
                if not await new_run.evaluate("details => details.open"):
                    await new_run.locator("summary").first.click()
                await epochs.wait_for(state="visible")
            await epochs.fill("10000")
            await name_field.fill(f"flood-{attempt}-{int(time.time())}")
            await start.click()
            try:  # the click sets the app to rerunRequested at once; a rerun quicker than this wait is over already
                await self.page.wait_for_selector('[data-testid="stApp"]:not([data-test-script-state="notRunning"])',
                                                  timeout=3_000)
            except PlaywrightTimeout:
                pass
            await self.idle()
            errors = self.page.locator('[data-testid^="stAlertContentError"]')
            if await errors.count():
                self.flood_messages.add((await errors.first.inner_text()).split("(")[0].strip()[:80])
        # Which Starts were accepted: the runs this server lists under a flood name (the page lists every run;
        # an error on screen may be the previous click's), and the epochs their captions show.
        text = await self.page.evaluate("document.body.textContent")
        self.flood_accepted = len(set(re.findall(r"flood-(\d+)-\d+", text)))
        self.flood_refusals = 40 - self.flood_accepted
        self.flood_messages |= {f"accepted run shows {epochs} epochs" for epochs in set(re.findall(r"· (\d+) epochs ·", text))}

    async def _hostile_upload(self, png: bytes) -> None:
        await self.go("Upload & draw")
        files = [{"name": f"bomb-{n}.png", "mimeType": "image/png", "buffer": png} for n in range(3)]
        await self.page.locator('input[type="file"]').first.set_input_files(files=files)
        # Each file gets its report, or its own message saying why not: wait for the third's.
        answer = self.page.locator('h3, [data-testid^="stAlertContent"]').filter(has_text="bomb-2.png")
        await answer.first.wait_for(timeout=STEP_TIMEOUT_MS * 3)
        await self.idle()

    async def _reruns(self) -> None:
        await self.go("Reconstructions")
        plus = self.page.locator('[data-testid="stNumberInput"] button[data-testid="stNumberInputStepUp"]').first
        for _ in range(60):  # as fast as the page takes clicks, without waiting for the reruns
            await plus.click(timeout=STEP_TIMEOUT_MS)
        await self.idle()


async def visit_all(url: str, sessions: int, deadline_s: float, screenshots: Path | None,
                    teacher: bool = False, abuser: bool = False) -> tuple[dict, list, float, float]:
    from playwright.async_api import async_playwright

    timings: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    png = digit_png()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        started = time.perf_counter()
        if teacher:
            page = await browser.new_page()
            await page.goto(url, timeout=STEP_TIMEOUT_MS)
            await page.wait_for_selector(APP_IDLE, timeout=STEP_TIMEOUT_MS)
        browser_cpu = cpu_seconds(chromium_pids())
        visits = [Session(i, browser, url, timings, errors, screenshots).run(train=i == 0, png=png) for i in range(sessions)]
        bad = Abuser(sessions, browser, url, defaultdict(list), [], screenshots) if abuser else None
        if bad is not None:  # its own timings and errors: the figures are the students'
            visits.append(bad.run(hostile_png()))
        try:
            await asyncio.wait_for(asyncio.gather(*visits), timeout=deadline_s)
        except asyncio.TimeoutError:
            errors.append(f"the run passed its {deadline_s:.0f} s deadline")
        elapsed = time.perf_counter() - started
        if bad is not None:
            steps = ", ".join(f"{name} {values[0]:.1f} s" for name, values in bad.timings.items())
            print(f"abuser: {steps}; of 40 Start clicks, refused at once: {getattr(bad, 'flood_refusals', '?')}, "
                  f"accepted: {getattr(bad, 'flood_accepted', '?')} (refusals said: {sorted(getattr(bad, 'flood_messages', []))}); "
                  f"its errors: {bad.errors or 'none'}")
        browser_cpu = cpu_seconds(chromium_pids()) - browser_cpu
        await browser.close()
    return timings, errors, elapsed, browser_cpu


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_class(args, abuser: bool) -> int:
    """Serve one class on a fresh server and print its figures; returns the number of errors."""
    scratch = Path(tempfile.mkdtemp(prefix="latent-lab-load-"))
    server = AppServer(copy_shipped_checkpoints(scratch / "checkpoints", with_maps=not args.cold_maps), scratch / "streamlit.log")
    try:
        # A teacher starts the server and opens the app before class (the first visit starts the
        # background warm-up: Streamlit has no server-start hook), then the class arrives.
        asyncio.run(visit_all(server.url, 0, 120, None, teacher=True))
        time.sleep(args.warm)
        server_cpu, machine_before = cpu_seconds([server.process.pid]), machine_cpu()
        timings, errors, elapsed, browser_cpu = asyncio.run(visit_all(server.url, args.sessions, args.deadline, scratch,
                                                                      abuser=abuser))
        server_cpu = cpu_seconds([server.process.pid]) - server_cpu
        machine_busy = machine_cpu()[0] - machine_before[0]
        rss = server.rss_mb()[1]
    finally:
        server.stop()
    log_errors = [line for line in (scratch / "streamlit.log").read_text(errors="replace").splitlines() if "Traceback" in line]
    errors += [f"server log: {line}" for line in log_errors]
    completed = args.sessions - len({e.split(",")[0] for e in errors if e.startswith("session ")})
    print(f"--- {args.sessions} students {'with' if abuser else 'without'} the abusive session")
    print(f"{args.sessions} sessions in {elapsed:.1f} s; server log {scratch / 'streamlit.log'}")
    print(f"CPU time meanwhile: server {server_cpu:.0f} s, Chromium (the simulated browsers) {browser_cpu:.0f} s, "
          f"everything on the machine {machine_busy:.0f} s (Playwright's driver and this script included), "
          f"of the {elapsed * os.cpu_count():.0f} core-seconds there were")
    print(f"{'step':22s} {'n':>3s} {'p50 s':>7s} {'p95 s':>7s}")
    for name, values in timings.items():
        print(f"{name:22s} {len(values):3d} {statistics.median(values):7.2f} {percentile(values, 0.95):7.2f}")
    for error in errors:
        print("error:", error)
    everything = [v for values in timings.values() for v in values]
    print(f"sessions_completed={completed}")
    print(f"abuser={'on' if abuser else 'off'} sessions={args.sessions} errors={len(errors)} "
          f"p50_s={statistics.median(everything):.2f} p95_s={percentile(everything, 0.95):.2f} peak_rss_mb={rss:.0f}")
    return len(errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds before the run is called off")
    parser.add_argument("--warm", type=float, default=60.0, help="seconds between the teacher's first visit and the class")
    parser.add_argument("--cold-maps", action="store_true",
                        help="leave out the maps shipped beside the checkpoints, so the class waits for UMAP to be computed")
    parser.add_argument("--abuser", action="store_true", help="add one session that floods the queue, uploads a bomb and reruns")
    parser.add_argument("--both", action="store_true", help="run the class without the abuser, then with it")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 50:
        parser.error("--sessions must be between 1 and 50")
    runs = [False, True] if args.both else [args.abuser]
    errors = sum(one_class(args, abuser) for abuser in runs)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
