"""A third-party serializer, installed as a package, found through its entry point.

The example plug-in (``examples/custom_serializer``) is pip-installed into the running
virtualenv, offline and without build isolation, used end to end between this process
and a real worker process, then uninstalled.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrpc import App

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_serializer"
DISTRIBUTION = "taskrpc-canonical-json"


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        timeout=90,
    )


@pytest.fixture(scope="module")
def plugin_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    source = tmp_path_factory.mktemp("plugin") / "custom_serializer"
    shutil.copytree(EXAMPLE, source)  # builds write into the source tree: keep ours clean
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(source))
    importlib.invalidate_caches()
    yield
    pip("uninstall", "-y", DISTRIBUTION)
    sys.modules.pop("taskrpc_canonical_json", None)


@pytest.mark.usefixtures("plugin_installed")
def test_the_plugin_is_loaded_on_first_use_never_at_import():
    code = (
        "import sys, taskrpc\n"
        "app = taskrpc.App('p', broker_url='memory://')\n"
        "assert 'taskrpc_canonical_json' not in sys.modules, 'loaded too early'\n"
        "assert 'cjson' not in app.serializers.names()\n"
        "serializer = app.serializers.by_name('cjson')\n"
        "assert 'taskrpc_canonical_json' in sys.modules\n"
        "print(serializer.content_type, serializer.dumps({'b': 1, 'a': [1.5, 'é']}).decode())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.split() == [
        "application/x-canonical-json",
        '{"a":[1.5,"\\u00e9"],"b":1}',
    ]


@pytest.mark.usefixtures("plugin_installed")
def test_a_worker_and_a_client_talk_through_the_plugin(
    spawn_worker, broker_url, unique_queue, monkeypatch
):
    monkeypatch.setenv("TASKRPC_SERIALIZER", "cjson")
    spawn_worker()  # the worker's app takes its serializer from the environment
    from tests.apps.sample import Point

    with App("plugin-client", broker_url=broker_url, default_queue=unique_queue) as app:
        result = app.send_task("move", [Point(x=1, y=2).model_dump()], {"dx": 10})
        assert result.get(timeout=15) == {"x": 11, "y": 2}
        reply, _ = result._call.outcome()
        assert reply.content_type == "application/x-canonical-json"
        assert reply.body == b'{"error":null,"ok":true,"result":{"x":11,"y":2}}'
