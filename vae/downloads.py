"""Bounded downloads for torchvision's data sets: a server that never answers cannot hang a run.

torchvision's own downloader calls `urlopen` without a timeout, so a mirror that accepts the
connection and then stays silent blocks its thread forever (and with it every queued run). Here
each file is fetched with urllib under a read timeout and an overall deadline, checked against
torchvision's published MD5, written to a temporary file and renamed into place, where
torchvision then finds it verified and only unpacks it. Stop is honoured between chunks: a run
sets its stop event for its own thread with `stopped_by`.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

READ_SECONDS = 30.0  # no byte for this long: the server is taken as silent
TOTAL_SECONDS = 30 * 60.0  # one file may take at most this long (CIFAR-10's 163 MB at 100 kB/s would be 27 min)
CHUNK_BYTES = 1 << 16
USER_AGENT = "latent-lab (torchvision data sets)"

_stop: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("latent_lab_download_stop", default=None)


class DownloadError(Exception):
    """A file that could not be fetched; the message names the cause (HTTP status, timeout, checksum)."""


class DownloadStopped(DownloadError):
    """The user stopped the run while it was downloading."""


@contextlib.contextmanager
def stopped_by(event: threading.Event):
    """Downloads started in this context (this thread) end with DownloadStopped once `event` is set."""
    token = _stop.set(event)
    try:
        yield
    finally:
        _stop.reset(token)


@dataclass(frozen=True)
class RemoteFile:
    """One file a torchvision data set downloads: where from (mirrors, in order), where to, its MD5."""

    urls: tuple[str, ...]
    folder: Path  # where torchvision looks for the downloaded file
    filename: str
    md5: str | None


def torchvision_files(classes, root: Path) -> list[RemoteFile]:
    """The files torchvision's dataset class `classes` would download into `root`.

    MNIST, FashionMNIST and KMNIST list `mirrors` and `resources` (name, md5) into <root>/<Class>/raw;
    CIFAR10 has one `url`, `filename` and `tgz_md5` into root. (torchvision 0.29's attributes.)
    """
    if hasattr(classes, "resources"):
        mirrors = tuple(getattr(classes, "mirrors", ()))
        folder = root / classes.__name__ / "raw"
        return [RemoteFile(tuple(mirror + name for mirror in mirrors), folder, name, md5)
                for name, md5 in classes.resources]
    return [RemoteFile((classes.url,), root, classes.filename, getattr(classes, "tgz_md5", None))]


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stopped() -> bool:
    event = _stop.get()
    return event is not None and event.is_set()


def _fetch_one(url: str, target: Path, md5: str | None, read_seconds: float, total_seconds: float) -> None:
    host = urllib.parse.urlsplit(url).hostname or url
    deadline = time.monotonic() + total_seconds
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": USER_AGENT}),
                                          timeout=read_seconds)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{host} answered HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise DownloadError(f"{host} did not answer within {read_seconds:g} s") from None
        raise DownloadError(f"{host}: {getattr(reason, 'strerror', None) or reason}") from None
    except TimeoutError:  # connected, then silence before the status line
        raise DownloadError(f"{host} accepted the connection but sent nothing for {read_seconds:g} s") from None
    except (OSError, ValueError, http.client.HTTPException) as error:  # a reset connection, a malformed answer
        raise DownloadError(f"{host}: {error!r}") from None
    received = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with response, os.fdopen(handle, "wb") as out:
            while True:
                if _stopped():
                    raise DownloadStopped("Stopped while downloading.")
                if time.monotonic() > deadline:
                    raise DownloadError(f"{host} was too slow: {received / 1e6:.1f} MB in {total_seconds / 60:g} min")
                try:  # read1: at most one receive, so a server trickling bytes cannot hold one call for long
                    chunk = response.read1(CHUNK_BYTES)
                except TimeoutError:
                    raise DownloadError(
                        f"{host} stopped sending for {read_seconds:g} s after {received / 1e6:.1f} MB") from None
                except (OSError, http.client.HTTPException) as error:  # e.g. the connection cut short
                    raise DownloadError(f"{host}: {error!r} after {received / 1e6:.1f} MB") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
        if response.length:  # bytes the Content-Length promised that never came
            raise DownloadError(f"{host} closed the connection after {received:,} "
                                f"of {received + response.length:,} bytes")
        if md5 is not None and _md5(Path(temporary)) != md5:
            raise DownloadError(f"the file from {host} does not match torchvision's checksum (a proxy's error page?)")
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def fetch(remote: RemoteFile, read_seconds: float | None = None, total_seconds: float | None = None) -> Path:
    """Download `remote` into its folder from the first mirror that works (skipped when a file with
    the right MD5 is already there); returns its path.

    Raises DownloadError naming each mirror's failure (e.g. "HTTP 403 Forbidden", "sent nothing for
    30 s"), DownloadStopped when the run was stopped; OSError when the folder cannot be written.
    """
    read_seconds = READ_SECONDS if read_seconds is None else read_seconds
    total_seconds = TOTAL_SECONDS if total_seconds is None else total_seconds
    target = remote.folder / remote.filename
    if target.is_file() and (remote.md5 is None or _md5(target) == remote.md5):
        return target
    remote.folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in remote.urls:
        try:
            _fetch_one(url, target, remote.md5, read_seconds, total_seconds)
            return target
        except DownloadStopped:
            raise
        except DownloadError as error:
            failures.append(str(error))
    raise DownloadError(f"{remote.filename}: " + "; ".join(failures or ["no address to download it from"]))
