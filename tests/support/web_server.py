"""Run the real browser app (`python app.py`) in a child process, for the web tests.

The app gets its own data dir holding a copy of a prebuilt knowledge index (a
cold ingest takes ~25 s; a copy takes milliseconds), listens on a free loopback
port, and keeps that port across `restart()` so a page can reload the same URL.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mlsd_bot.config import PROJECT_ROOT

START_TIMEOUT = 180.0  # loading the embedder and gradio takes ~20 s on a slow machine
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_index(prebuilt_data_dir: Path, dest: Path) -> Path:
    """A fresh data dir with the index (and tiktoken cache) of `prebuilt_data_dir`, no sessions."""
    shutil.copytree(prebuilt_data_dir, dest, ignore=shutil.ignore_patterns("sessions.sqlite3*", "web-secret"))
    return dest


class AppServer:
    def __init__(self, env: dict[str, str], log_path: Path, blocked_log: Path | None = None):
        self.env, self.log_path, self.blocked_log = env, log_path, blocked_log
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.env["MLSD_DATA_DIR"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> AppServer:
        with open(self.log_path, "ab") as log:  # the child keeps its own handle
            self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=PROJECT_ROOT,
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self._answers():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"app.py did not answer on {self.url} within {START_TIMEOUT:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        """Kill the app as a crash would (SIGKILL): nothing gets a chance to save on the way out."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.assert_offline()

    def assert_offline(self) -> None:
        """The child's offline guard (tests/conftest.py) logs every outbound attempt: there must be none."""
        seen = self.blocked_log.read_text().splitlines() if self.blocked_log and self.blocked_log.exists() else []
        assert not seen, "the app tried to reach the network:\n" + "\n".join(seen)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def _answers(self) -> bool:
        """One poll: is the app serving? (A login app overrides what counts as up.)"""
        with _DIRECT.open(self.url + "config", timeout=2) as r:
            return r.status == 200

    def get(self, path: str) -> str:
        with _DIRECT.open(self.url + path.lstrip("/"), timeout=10) as r:
            return r.read().decode("utf-8", errors="replace")


def launch_app(prebuilt_data_dir: Path, workdir: Path, env: dict[str, str], blocked_log: Path) -> AppServer:
    """Copy the index into `workdir/data`, start the app on it, and check it tried no outbound call."""
    data = copy_index(prebuilt_data_dir, workdir / "data")
    env = {**env, "MLSD_DATA_DIR": str(data), "GRADIO_ANALYTICS_ENABLED": "False"}
    server = AppServer(env, workdir / "app.log", blocked_log).start()
    server.assert_offline()
    return server
