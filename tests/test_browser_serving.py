"""Real Chromium and a real server: another student's view, and a server stopped mid-run."""

from __future__ import annotations

import signal
import sqlite3

import pytest

from conftest import BUSY_MS, AppServer, copy_shipped_checkpoints, new_student, open_app_page, start_digits_run, wait_for_idle
from vae.checkpoints import load_checkpoint
from vae.jobstore import store_path

BEACON = "e.invalid"  # a name that never resolves: any request for it is the page obeying typed Markdown


def _start(page, name: str, epochs: int, owner_name: str = "") -> None:
    start_digits_run(page, name, epochs, batch_size=16, owner_name=owner_name)
    page.locator('[data-testid="stProgress"]').first.wait_for()


@pytest.mark.browser
def test_another_student_sees_typed_markdown_as_text_and_cannot_act_on_the_run(browser, tmp_path):
    # Its own server: the shared one's timing-sensitive tests should not inherit this test's runs.
    app_server = AppServer(copy_shipped_checkpoints(tmp_path / "checkpoints"), tmp_path / "server.log")
    alice_context, alice = new_student(browser)
    bob_context, bob = new_student(browser)
    requests: list[str] = []
    bob_context.on("request", lambda request: requests.append(request.url))
    typed = f"![x](https://{BEACON}/x) [Ex](https://{BEACON})"  # 49 of the 60 characters allowed
    try:
        open_app_page(alice, app_server, "train")
        _start(alice, "alice-markdown", epochs=300, owner_name=typed)
        open_app_page(bob, app_server, "train")
        bob.get_by_text("Runs on this server").click()
        wait_for_idle(bob)
        line = bob.get_by_text("alice-markdown ·", exact=False).first
        line.wait_for()
        assert typed in line.inner_text()  # shown exactly as typed
        main = bob.locator('[data-testid="stMain"]')
        assert main.locator(f'img[src*="{BEACON}"]').count() == 0 and main.locator(f'a[href*="{BEACON}"]').count() == 0
        assert not [url for url in requests if BEACON in url]
        # Bob gets no Show or Stop for Alice's run: only her session (or the teacher) may act on it.
        row = bob.locator('[data-testid="stHorizontalBlock"]').filter(has_text="alice-markdown")
        assert row.get_by_role("button").count() == 0
        alice.get_by_role("button", name="Stop").first.click()
        alice.locator('[data-testid^="stAlertContent"]').get_by_text("Stopped", exact=False).wait_for(timeout=BUSY_MS)
    finally:
        alice_context.close()
        bob_context.close()
        app_server.stop()


@pytest.mark.browser
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_server_stopped_mid_run_saves_the_last_complete_epoch_exits_cleanly_and_remembers_the_run(
        browser, tmp_path, signal_number):
    checkpoints = copy_shipped_checkpoints(tmp_path / "checkpoints")
    server = AppServer(checkpoints, tmp_path / "first.log")
    context, page = new_student(browser)
    try:
        open_app_page(page, server, "train")
        _start(page, "cut-short", epochs=500)
        page.wait_for_function("""() => { const bar = document.querySelector('[data-testid="stProgress"]');
                                          return bar && /Epoch ([3-9]|\\d\\d+)\\//.test(bar.innerText); }""", timeout=BUSY_MS)
        server.process.send_signal(signal_number)
        code = server.process.wait(timeout=120)
    finally:
        context.close()
        server.stop()
    log = (tmp_path / "first.log").read_text()
    assert code == 0 and "terminate called" not in log, log[-2000:]
    saved = load_checkpoint(checkpoints / "cut-short")
    assert len(saved.history) >= 2 and saved.config["train"]["status"] == "stopped"
    with sqlite3.connect(store_path(checkpoints)) as connection:
        assert connection.execute("SELECT status FROM jobs WHERE name = 'cut-short'").fetchone() == ("interrupted",)

    # After a restart the run list still has it, marked as interrupted.
    restarted = AppServer(checkpoints, tmp_path / "second.log")
    context, page = new_student(browser)
    try:
        open_app_page(page, restarted, "train")
        page.get_by_text("Runs on this server").click()
        wait_for_idle(page)
        line = page.get_by_text("cut-short ·", exact=False).first
        line.wait_for()
        assert "interrupted" in line.inner_text()
    finally:
        context.close()
        restarted.stop()
