"""Start the app (`streamlit run app.py`) on a free loopback port and wait until it answers.

The one helper the browser tests (tests/conftest.py) and the benches (bench/*.py) share: a server
of its own per caller, over a checkpoints folder it is given, so parallel runs never collide.
Nothing here imports Streamlit; the app runs in a child process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"
# For the scripts that drive the app with Debian's Chromium through Playwright.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic", "--no-first-run"]
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'  # the script run has finished
# Long enough for a busy 2-core machine running other work, where starting a server can take minutes.
START_LIMIT_S = 300.0


def copy_shipped_checkpoints(target: Path, with_maps: bool = False, only: tuple[str, ...] = ()) -> Path:
    """A scratch copy of checkpoints/ (only the named models, if given); without the shipped maps
    unless asked, so callers exercise computing them."""
    target.mkdir(parents=True, exist_ok=True)
    for folder in SHIPPED.iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and (not only or folder.name in only):
            shutil.copytree(folder, target / folder.name,
                            ignore=None if with_maps else shutil.ignore_patterns("projections"))
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """`streamlit run app.py` on a free loopback port, with its own checkpoints folder.

    extra_env: more environment variables for the server. wait=False returns at once (call
    wait_healthy, e.g. to time the start). Raises RuntimeError when the server exits or does not
    answer /_stcore/health within the limit (its log is in the message).
    """

    def __init__(self, checkpoints: Path, log: Path, extra_env: dict | None = None, wait: bool = True,
                 limit: float = START_LIMIT_S):
        self.checkpoints = checkpoints
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LATENT_LAB_CHECKPOINTS": str(checkpoints), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_healthy(limit)

    def wait_healthy(self, limit: float = START_LIMIT_S) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)  # polling the health endpoint, as Streamlit's own e2e tests do
        self.stop()
        raise RuntimeError(f"streamlit did not become healthy:\n{self.log.read_text()}")

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the server process in MiB (VmRSS, VmHWM; Linux's /proc)."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
        return fields["VmRSS"], fields["VmHWM"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
