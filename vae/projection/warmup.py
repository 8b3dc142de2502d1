"""The server's one warm-up: the heavy imports, then umap-learn's numba compilation, each once per process.

Streamlit has no server-start hook, so `app.py` calls `start_warmup` (through `ui.warm_up`) at every
visit; the first call starts a daemon thread that imports the libraries the pages use and then
starts `start_umap_warmup`. umap-learn compiles itself with numba the first time it fits and
transforms (tens of seconds), so that warm-up fits and transforms a tiny array on its own daemon
thread; the map page shows its stage (`umap_warmup_status`).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vae.projection.libraries import SHARED_IMPORTS, import_lock


@dataclass
class WarmupStatus:
    """Where the UMAP warm-up is: stage is "not started", "importing", "compiling fit",
    "compiling transform", "ready" or "failed"; step counts the stages done of `steps`."""

    stage: str = "not started"
    step: int = 0
    steps: int = 3
    started: float | None = None
    finished: float | None = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.stage == "ready"

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started


_warmup = WarmupStatus()
_warmup_lock = threading.Lock()
_warmup_done = threading.Event()


def umap_warmup_status() -> WarmupStatus:
    """A snapshot of the warm-up's progress."""
    with _warmup_lock:
        return WarmupStatus(**vars(_warmup))


def _set_warmup(**changes) -> None:
    with _warmup_lock:
        for name, value in changes.items():
            setattr(_warmup, name, value)


def _run_umap_warmup(delay: float) -> None:
    try:
        # The first visitor's page runs first: numba's compiler is mostly Python and holds the GIL.
        time.sleep(delay)
        _set_warmup(stage="importing", step=0)
        with import_lock:
            import umap  # noqa: F401  (13 s on a fresh install: the first stage shown)

        import numpy as np

        from vae.projection.umap_map import UmapMap

        rng = np.random.default_rng(0)
        points = rng.normal(size=(64, 4)).astype(np.float32)
        _set_warmup(stage="compiling fit", step=1)
        # The very path every map takes (precomputed neighbours), on 64 points: the fuzzy graph,
        # the layout optimiser and the transform get compiled.
        fitted = UmapMap(points)
        _set_warmup(stage="compiling transform", step=2)
        fitted.transform(points[:4] + 0.01)
        _set_warmup(stage="ready", step=3, finished=time.monotonic())
    except Exception as error:  # the map still works without UMAP; the page shows why
        _set_warmup(stage="failed", error=f"{type(error).__name__}: {error}", finished=time.monotonic())
    finally:
        _warmup_done.set()


def start_umap_warmup(delay: float = 2.0) -> WarmupStatus:
    """Start compiling umap-learn on a daemon thread (once per process), `delay` seconds from now.

    `start_warmup` calls this once its imports are done; a page asking for UMAP calls it too, with
    no delay, in case the server's warm-up has not started it (yet, or at all: LATENT_LAB_UMAP_WARMUP=0).
    """
    with _warmup_lock:
        if _warmup.started is None:
            with import_lock:  # about a second, once per server process
                for name in SHARED_IMPORTS:
                    importlib.import_module(name)
            _warmup.started = time.monotonic()
            _warmup.stage = "importing"
            threading.Thread(target=_run_umap_warmup, args=(delay,), name="umap-warmup", daemon=True).start()
    return umap_warmup_status()


def wait_for_umap_warmup(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (ready or failed); False on timeout."""
    return _warmup_done.wait(timeout)


# ---------------------------------------------------------------------------------------------
# The server's warm-up: the heavy imports first, then the UMAP warm-up above.

_libraries_started = False
_libraries_done = threading.Event()


def start_warmup(imports: tuple[str, ...], then: Callable[[], object] | None = None, umap: bool = True,
                 delay: float = 1.5) -> None:
    """Warm the server up, once per process, on a daemon thread starting `delay` seconds from now:
    import the modules named in `imports`, call `then` (e.g. start the runs queued before a restart),
    then, when `umap`, `start_umap_warmup()`. Later calls do nothing; `wait_for_libraries` waits for it.

    A failure is logged and leaves the rest to the page that needs the library (it says what is wrong).
    """
    global _libraries_started
    with _warmup_lock:
        if _libraries_started:
            return
        _libraries_started = True
    threading.Thread(target=_run_warmup, args=(imports, then, umap, delay), name="latent-lab-warm-up",
                     daemon=True).start()


def _run_warmup(imports: tuple[str, ...], then: Callable[[], object] | None, umap: bool, delay: float) -> None:
    try:
        # Let the first visitor's browser finish drawing its page before taking the two cores.
        time.sleep(delay)
        for name in imports:
            importlib.import_module(name)
        if then is not None:
            then()
        if umap:
            start_umap_warmup()  # numba compiles umap-learn on its own daemon thread
    except Exception:
        logging.getLogger(__name__).exception("warm-up failed")
    finally:
        _libraries_done.set()


def wait_for_libraries(timeout: float | None = None) -> bool:
    """Block until the warm-up's imports are done (True; also after a failure), or `timeout` seconds pass (False)."""
    return _libraries_done.wait(timeout)
