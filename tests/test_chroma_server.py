"""Ingest and search against a real Chroma server (MLSD_CHROMA_URL) give the same results as the local store.

The server is `.venv/bin/chroma run` on a free loopback port. If it cannot start,
the tests FAIL (never skip): a server deployment that silently goes untested is
worse than a red test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from mlsd_bot.config import PROJECT_ROOT, Settings, load_settings
from mlsd_bot.retrieval import Retriever
from mlsd_bot.store import ingest, open_client, open_index

CHROMA = PROJECT_ROOT / ".venv" / "bin" / "chroma"
MLSD_BOT = PROJECT_ROOT / ".venv" / "bin" / "mlsd-bot"
STARTUP_LIMIT_S = 120  # how long we wait for the heartbeat before declaring the start failed

QUERIES = [
    ("how to detect drift in feature distributions", None, None),
    ("negative sampling for friend suggestions", "people_you_may_know", None),
    ("int8 quantization and distillation", None, "serving"),
    ("offline metrics", "visual_search", "evaluation"),
    ("what should I ask about scale and latency", None, None),
]


@dataclass
class ChromaServer:
    url: str | None
    problem: str | None

    def require(self) -> str:
        """The server's URL, or fail the calling test with why it did not start."""
        if self.problem:
            pytest.fail(f"chroma server did not start: {self.problem}")
        return self.url


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _heartbeat(url: str) -> bool:
    """True once GET /api/v2/heartbeat answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as r:
            return r.status == 200 and "heartbeat" in r.read().decode()
    except OSError:
        return False


def _wait_until_up(proc: subprocess.Popen, url: str, log: Path) -> str | None:
    """None when the server answers; otherwise what went wrong (with the end of its log)."""
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"`chroma run` exited with code {proc.returncode}; log:\n{log.read_text()[-2000:]}"
        if _heartbeat(url):
            return None
        time.sleep(0.3)
    return f"no heartbeat at {url} after {STARTUP_LIMIT_S} s; log:\n{log.read_text()[-2000:]}"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory, subprocess_env) -> Iterator[ChromaServer]:
    """A `chroma run` server on a temp path and a free port; terminated (then waited for) afterwards."""
    root = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    url, log = f"http://127.0.0.1:{port}", root / "server.log"
    try:
        proc = subprocess.Popen([str(CHROMA), "run", "--path", str(root / "db"), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log.open("w"), stderr=subprocess.STDOUT, env=subprocess_env())
    except OSError as e:
        yield ChromaServer(None, f"cannot execute {CHROMA}: {e}")
        return
    try:
        yield ChromaServer(url, _wait_until_up(proc, url, log))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_settings(url: str, knowledge_dir: Path, data_dir: Path) -> Settings:
    """Settings that point at the server (MLSD_CHROMA_URL), read from an explicit env mapping."""
    return load_settings({
        "MLSD_DATA_DIR": str(data_dir),
        "MLSD_KNOWLEDGE_DIR": str(knowledge_dir),
        "MLSD_CHROMA_URL": url,
        "MLSD_VOICE": "offline",
    })


def test_ingest_and_search_on_the_server_match_the_local_store(chroma_server, real_index_settings, tmp_path) -> None:
    url = chroma_server.require()
    server_settings = _server_settings(url, real_index_settings.knowledge_dir, tmp_path)
    assert server_settings.chroma_url == url
    assert open_client(server_settings).get_settings().chroma_api_impl.endswith("FastAPI")  # an HTTP client

    local = Retriever(open_index(real_index_settings, build_if_missing=False))
    report = ingest(server_settings, progress=None)
    assert report.chunks == len(local.chunks)
    assert report.removed == [] and set(report.added) | set(report.unchanged) == {c.source for c in local.chunks}
    assert not server_settings.index_dir.exists()  # nothing went to a local store

    remote = Retriever(open_index(server_settings, build_if_missing=False))
    assert sorted(remote.chunks, key=lambda c: c.id) == sorted(local.chunks, key=lambda c: c.id)
    for query, case, phase in QUERIES:
        here = local.search(query, case, phase, k=5)
        there = remote.search(query, case, phase, k=5)
        assert [h.chunk.id for h in there] == [h.chunk.id for h in here], query
        assert [h.score for h in there] == pytest.approx([h.score for h in here], abs=1e-4)


def test_reingest_on_the_server_embeds_nothing(chroma_server, real_index_settings, tmp_path) -> None:
    server_settings = _server_settings(chroma_server.require(), real_index_settings.knowledge_dir, tmp_path)
    ingest(server_settings, progress=None)  # no-op when the first test already filled it
    again = ingest(server_settings, progress=None)
    assert again.added == [] and again.removed == [] and again.unchanged


def test_cli_search_through_mlsd_chroma_url(chroma_server, real_index_settings, subprocess_env, tmp_path) -> None:
    url = chroma_server.require()
    server_settings = _server_settings(url, real_index_settings.knowledge_dir, tmp_path)
    ingest(server_settings, progress=None)
    query, case, phase = QUERIES[1]
    env = subprocess_env(MLSD_CHROMA_URL=url, MLSD_DATA_DIR=str(server_settings.data_dir),
                         MLSD_KNOWLEDGE_DIR=str(server_settings.knowledge_dir))
    proc = subprocess.run([str(MLSD_BOT), "search", query, "--case", case, "--json"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    local = Retriever(open_index(real_index_settings, build_if_missing=False)).search(query, case, phase)
    assert [h["id"] for h in hits] == [h.chunk.id for h in local]
    assert not server_settings.index_dir.exists()
