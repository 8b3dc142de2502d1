"""Downloads of torchvision's sets against a real local HTTP server: they succeed, fail with the
cause named (HTTP status, silence), end within a bounded time, and Stop ends a run that is loading."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest
from torchvision.datasets import MNIST

from dataset_files import write_tiny_idx_set
from vae import downloads, jobs
from vae.datasets import DataError, load_dataset
from vae.datasets.torchvision_sets import IDX_FILES
from vae.jobs import JobManager
from vae.train import TrainConfig

WAIT = 120  # seconds: generous for a busy 2-core machine; the old code never ended at all


class Files(http.server.ThreadingHTTPServer):
    """Serves {path: (status, body[, declared length])} on 127.0.0.1."""

    daemon_threads = True

    def __init__(self, routes: dict[str, tuple[int, bytes]]):
        self.routes = routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805 (the server's own handler)
                status, body, *declared = self.routes.get(handler.path, (404, b"not here"))
                handler.send_response(status)
                handler.send_header("Content-Length", str(declared[0] if declared else len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Silent:
    """A server that accepts connections and never says a word (a stuck mirror or proxy)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def close(self):
        self.listener.close()
        for connection in self.held:
            connection.close()


def tiny_mnist_archives(tmp_path: Path) -> dict[str, bytes]:
    """The four MNIST downloads (.gz of the IDX files) of a tiny set, by file name."""
    write_tiny_idx_set(tmp_path / "source", "MNIST", train=12, test=6)
    raw = tmp_path / "source" / "MNIST" / "raw"
    return {f"{name}.gz": gzip.compress((raw / name).read_bytes()) for name in IDX_FILES}  # torchvision's order


@pytest.fixture
def mnist_from(monkeypatch):
    """Point torchvision's MNIST at our mirrors, with the checksums of our files."""
    monkeypatch.delenv("LATENT_LAB_OFFLINE", raising=False)

    def point(mirrors: list[str], archives: dict[str, bytes]):
        monkeypatch.setattr(MNIST, "mirrors", [mirror.rstrip("/") + "/" for mirror in mirrors])
        monkeypatch.setattr(MNIST, "resources", [(name, hashlib.md5(body).hexdigest()) for name, body in archives.items()])

    return point


def test_missing_files_are_downloaded_checked_and_unpacked_where_torchvision_reads_them(tmp_path, mnist_from):
    archives = tiny_mnist_archives(tmp_path)
    server = Files({f"/mnist/{name}": (200, body) for name, body in archives.items()})
    try:
        mnist_from([f"{server.url}/mnist/"], archives)
        dataset = load_dataset("mnist", tmp_path / "data")
    finally:
        server.shutdown()
    assert len(dataset.train_images) == 12 and len(dataset.test_images) == 6
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert (raw / "train-images-idx3-ubyte").is_file() and not list(raw.glob("*.part"))


@pytest.mark.parametrize("status, reason", [(403, "Forbidden"), (503, "Service Unavailable")])
def test_an_http_error_is_named_with_its_status_for_every_mirror(tmp_path, mnist_from, status, reason):
    archives = tiny_mnist_archives(tmp_path)
    refusing = Files({f"/{name}": (status, b"<html>no</html>") for name in archives})
    missing = Files({})
    try:
        mnist_from([refusing.url, missing.url], archives)
        with pytest.raises(DataError) as caught:
            load_dataset("mnist", tmp_path / "data")
    finally:
        refusing.shutdown()
        missing.shutdown()
    message = str(caught.value)
    assert message.startswith(f"MNIST is not in {tmp_path}/data/MNIST/raw and the download failed (train-images-idx3-ubyte.gz: "
                              f"127.0.0.1 answered HTTP {status} {reason}; 127.0.0.1 answered HTTP 404 Not Found). ")
    assert "Put these files in that folder" in message


def test_a_file_that_fails_its_checksum_is_refused_and_not_kept(tmp_path, mnist_from):
    archives = tiny_mnist_archives(tmp_path)
    server = Files({f"/{name}": (200, b"a proxy's error page") for name in archives})
    try:
        mnist_from([server.url], archives)
        with pytest.raises(DataError, match="does not match torchvision's checksum"):
            load_dataset("mnist", tmp_path / "data")
    finally:
        server.shutdown()
    assert not any((tmp_path / "data" / "MNIST" / "raw").iterdir())


def test_a_download_cut_short_is_named_not_taken_for_damaged_files(tmp_path, mnist_from):
    archives = tiny_mnist_archives(tmp_path)
    server = Files({f"/{name}": (200, body[:100], len(body)) for name, body in archives.items()})  # closes early
    try:
        mnist_from([server.url], archives)
        with pytest.raises(DataError) as caught:
            load_dataset("mnist", tmp_path / "data")
    finally:
        server.shutdown()
    size = len(archives["train-images-idx3-ubyte.gz"])
    assert f"the download failed (train-images-idx3-ubyte.gz: 127.0.0.1 closed the connection after 100 of {size:,} bytes)" in str(caught.value)


def _in_thread(function):
    """Run function() on a daemon thread; returns (thread, outcome) so a hang fails the test instead of the suite."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_mirror_that_connects_but_never_answers_ends_with_a_message(tmp_path, mnist_from, monkeypatch):
    monkeypatch.setattr(downloads, "READ_SECONDS", 1.0)
    archives = tiny_mnist_archives(tmp_path)
    silent = Silent()
    try:
        mnist_from([silent.url], archives)
        thread, outcome = _in_thread(lambda: load_dataset("mnist", tmp_path / "data"))
        thread.join(WAIT)
        assert not thread.is_alive(), "the download still hangs"
    finally:
        silent.close()
    assert isinstance(outcome.get("error"), DataError)
    assert "(train-images-idx3-ubyte.gz: 127.0.0.1 accepted the connection but sent nothing for 1 s)" in str(outcome["error"])


def test_stop_ends_a_run_stuck_loading_its_data_and_the_queue_moves_on(tmp_path, mnist_from, monkeypatch):
    monkeypatch.setattr(downloads, "READ_SECONDS", 600.0)  # the stuck mirror outlasts the test unless Stop works
    archives = tiny_mnist_archives(tmp_path)
    silent = Silent()
    manager = JobManager()
    try:
        mnist_from([silent.url], archives)
        stuck = manager.submit("stuck", {"arch": "mlp", "latent_dim": 2, "hidden": (16,)},
                               TrainConfig(dataset="mnist", data_dir=str(tmp_path / "data"), epochs=1), root=tmp_path / "out")
        after = manager.submit("after", {"arch": "mlp", "latent_dim": 2, "hidden": (16,)},
                               TrainConfig(dataset="digits", epochs=1, batch_size=512), root=tmp_path / "out")
        stuck.wait_until(lambda view: view.status == jobs.RUNNING, WAIT)  # loading: the mirror holds it
        manager.stop(stuck.id)
        view = stuck.wait(WAIT)
        assert view.status == jobs.STOPPED, view.message
        assert view.message == "Stopped while loading the data set; nothing was trained or saved."
        assert after.wait(WAIT).status == jobs.FINISHED
    finally:
        silent.close()
    assert not (tmp_path / "out" / "stuck").exists()
