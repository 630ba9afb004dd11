"""The dashboard in a real headless Chromium, with real workers and calls."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from taskrpc import App, RemoteError
from taskrpc.dashboard import Collector, create_app
from taskrpc.testing.plugin import in_ci

from .conftest import free_port

pytestmark = pytest.mark.broker

CHROMIUM = os.environ.get("TASKRPC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Set to a path to (re)make the screenshot kept in the docs.
SCREENSHOT = os.environ.get("TASKRPC_DASHBOARD_SCREENSHOT")


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        message = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def dashboard(broker_url):
    import uvicorn

    app = App("sample", broker_url=broker_url)
    collector = Collector(app, interval=0.5)
    collector.start()
    port = free_port()
    config = uvicorn.Config(create_app(collector), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)
    collector.stop()
    app.close()


def test_the_page_shows_workers_counts_and_failures_live(rpc_app, spawn_worker, dashboard, browser):
    worker = spawn_worker("--pool", "threads", "-c", "2")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(dashboard)
    row = page.locator(f'#workers tr[data-pid="{worker.pid}"]')
    row.wait_for(timeout=20_000)  # a worker appears
    assert "threads" in row.inner_text() and "connected" in row.inner_text()
    assert page.locator("#status").inner_text() == "live"

    assert rpc_app.send_task("add", [1, 2]).get() == 3
    received = page.locator('#tasks tr[data-task="add"] td.received')
    received.wait_for(timeout=20_000)
    first = int(received.inner_text())
    for i in range(5):
        rpc_app.send_task("slow_add", [i, 1, 0.02]).get()
        rpc_app.send_task("add", [i, 1]).get()
    page.wait_for_function(  # the counter rises
        "n => Number(document.querySelector('#tasks tr[data-task=\"add\"] td.received')"
        "?.textContent) >= n",
        arg=first + 5,
        timeout=20_000,
    )

    failing = rpc_app.send_task("fail", ["the <b>disk</b> is full"])
    with pytest.raises(RemoteError):
        failing.get()
    failure = page.locator(f'#failures tr[data-request="{failing.id}"]')
    failure.wait_for(timeout=20_000)  # a failure is listed, with its code and message
    assert failure.locator("td.code").inner_text() == "task_failed"
    assert failure.locator("td.message").inner_text() == "the <b>disk</b> is full"  # as text
    assert page.locator("#failures b").count() == 0
    queue = page.locator(f'#queues tr[data-queue="{rpc_app.settings.default_queue}"]')
    queue.wait_for(timeout=20_000)
    if SCREENSHOT:  # with some load, so that the rates show
        end = time.monotonic() + 4
        while time.monotonic() < end:
            rpc_app.send_task("slow_add", [1, 1, 0.01]).get()
            rpc_app.send_task("add", [1, 1]).get()
        page.screenshot(path=SCREENSHOT, full_page=True)
    page.close()


def test_the_snapshot_api_and_event_stream_answer(dashboard):
    import json
    import urllib.request

    with urllib.request.urlopen(dashboard + "api/snapshot", timeout=10) as answer:
        snapshot = json.loads(answer.read())
    assert {"workers", "queues", "tasks", "failures", "version"} <= set(snapshot)
    with urllib.request.urlopen(dashboard + "events", timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        line = stream.readline().decode()
    assert line.startswith("data: {")
