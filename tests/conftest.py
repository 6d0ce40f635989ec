"""Fixtures shared by every test: an offline guard, a tiny knowledge folder, settings, the real index.

The guard patches the socket layer so that any connection to a non-loopback
address raises `OutboundConnectionBlocked` and is recorded; a test during which
one was attempted fails even if a library swallowed the error. Child processes
started with `subprocess_env()` get the same guard through a generated
`sitecustomize.py` and report attempts in a log file checked the same way.
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import os
import socket
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from mlsd_bot.config import PROJECT_ROOT, Settings, load_settings

REAL_KNOWLEDGE = PROJECT_ROOT / "knowledge"
BLOCKED_LOG_ENV = "MLSD_TEST_BLOCKED_LOG"
BLOCKED: list[str] = []  # outbound attempts seen in this process since the last check


class OutboundConnectionBlocked(RuntimeError):
    """Raised instead of connecting anywhere but loopback: tests must stay offline."""


# --- the offline guard ------------------------------------------------------------

def _host_is_loopback(host) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and the name localhost."""
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False  # a host name: we never resolve names for tests
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def _refuse(address) -> None:
    """Record the attempt (in memory and in the child-process log) and raise."""
    line = f"blocked outbound connection to {address!r}: tests must make no network call"
    BLOCKED.append(line)
    log = os.environ.get(BLOCKED_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"pid {os.getpid()}: {line}\n")
    raise OutboundConnectionBlocked(line)


def _check_socket(sock: socket.socket, address) -> None:
    """AF_UNIX and other local families pass; IPv4/IPv6 must be loopback."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _host_is_loopback(address[0]):
        _refuse(address)


def install_guard() -> Callable[[], None]:
    """Patch connect / connect_ex / create_connection; returns a function that undoes it."""
    orig = socket.socket.connect, socket.socket.connect_ex, socket.create_connection

    def connect(self, address):
        _check_socket(self, address)
        return orig[0](self, address)

    def connect_ex(self, address):
        _check_socket(self, address)
        return orig[1](self, address)

    def create_connection(address, *args, **kwargs):
        if not _host_is_loopback(address[0]):
            _refuse(address)
        return orig[2](address, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.create_connection = connect, connect_ex, create_connection

    def undo() -> None:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection = orig

    return undo


@pytest.fixture(scope="session", autouse=True)
def offline_guard() -> Iterator[None]:
    """Session-wide: nothing in the test process may reach a non-loopback address."""
    undo = install_guard()
    yield
    undo()


@pytest.fixture(scope="session")
def _child_guard(tmp_path_factory) -> tuple[Path, Path]:
    """A folder holding a sitecustomize.py that installs the guard, and the log it writes to."""
    folder = tmp_path_factory.mktemp("child-guard")
    code = "\n".join([
        "import sys",
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})",
        "from conftest import install_guard",
        "install_guard()",
        "sys.path.pop(0)",
    ]) + "\n"
    compile(code, "sitecustomize.py", "exec")  # Python would only print a warning for a broken one
    (folder / "sitecustomize.py").write_text(code)
    return folder, folder / "blocked.log"


@pytest.fixture(autouse=True)
def _no_outbound_calls(_child_guard) -> Iterator[None]:
    """Fail the test when any connection was blocked, even one a library caught and hid."""
    log = _child_guard[1]
    BLOCKED.clear()
    log.unlink(missing_ok=True)
    yield
    seen = BLOCKED + (log.read_text().splitlines() if log.exists() else [])
    assert not seen, "outbound network calls were attempted:\n" + "\n".join(seen)


@pytest.fixture(scope="session")
def subprocess_env(_child_guard) -> Callable[..., dict[str, str]]:
    """Build the environment for a child process: guarded, offline voice, no inherited MLSD_/OPENAI_ vars."""
    folder, log = _child_guard

    def make(**env: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLSD_", "OPENAI_"))}
        base.update(PYTHONPATH=str(folder), MLSD_VOICE="offline", ANONYMIZED_TELEMETRY="False")
        base[BLOCKED_LOG_ENV] = str(log)
        base.update(env)
        return base

    return make


# --- knowledge and settings -------------------------------------------------------

_FRAMEWORK = {
    "clarify": ("Clarifying requirements", """\
        ## What a strong candidate covers

        Ask for daily active users, the peak queries per second and the latency budget before drawing boxes.

        ## Red flags

        Jumping straight to a neural network without asking what success means.
        """),
    "monitoring": ("Monitoring, drift and retraining", """\
        ## Drift

        Compare feature distributions between training and serving with the population stability index.

        ## Retraining

        Retrain weekly and roll back automatically when the online metric falls below a threshold.
        """),
}

_CASES = {
    "toy_feed": ("Toy feed ranking", "Design the ranking of a toy social feed.", {
        "clarify": "Ask how many members open the feed each day and how fresh posts must be.",
        "framing": "Predict the probability of a comment for each member and post pair.",
        "data": "Impression logs joined with comments give the labels.\n\n### Sampling\n\nDownsample impressions without a comment and keep every positive.",
        "model": "Start from logistic regression, then a two-tower candidate generator feeding a gradient boosted ranker.",
        "evaluation": "Offline NDCG on held-out days, then an A/B test on comments per member.",
        "serving": "Precompute author embeddings; score candidates online within eighty milliseconds.",
        "monitoring": "Watch the comment rate per cohort and the calibration of predicted probabilities.",
    }),
    "toy_blur": ("Toy plate blurring", "Design a system that blurs licence plates in street photos.", {
        "clarify": "Ask whether recall matters more than precision: a missed plate is a privacy leak.",
        "framing": "Object detection of plates, output boxes with a confidence score.",
        "data": "Annotators draw boxes around plates; augment with night and rain images.",
        "model": "A one-stage detector with anchor boxes; a heavier two-stage detector as a comparison.",
        "evaluation": "Mean average precision at an IoU threshold of one half, plus recall on tiny plates.",
        "serving": "A batch pipeline blurs every uploaded panorama before it is published.",
        "monitoring": "Sample published images weekly and have annotators count the plates left unblurred.",
    }),
}


def framework_note(phase: str, title: str, body: str) -> str:
    """The markdown of a framework note in the required format."""
    return f"---\nid: {phase}\ntitle: {title}\nkind: framework\nphase: {phase}\n---\n{textwrap.dedent(body)}"


def case_note(case_id: str, title: str, problem: str, sections: dict[str, str]) -> str:
    """The markdown of a case note: front matter, then the seven phase sections in order."""
    body = "".join(f"## {phase.title()}\n\n{text}\n\n" for phase, text in sections.items())
    return f"---\nid: {case_id}\ntitle: {title}\nkind: case\nproblem: {problem}\n---\n{body}"


@pytest.fixture
def kb_dir(tmp_path) -> Path:
    """A tiny knowledge folder: two framework notes and two case notes (fast to ingest)."""
    root = tmp_path / "knowledge"
    (root / "framework").mkdir(parents=True)
    (root / "case_studies").mkdir()
    for phase, (title, body) in _FRAMEWORK.items():
        (root / "framework" / f"{phase}.md").write_text(framework_note(phase, title, body), encoding="utf-8")
    for case_id, (title, problem, sections) in _CASES.items():
        (root / "case_studies" / f"{case_id}.md").write_text(case_note(case_id, title, problem, sections), encoding="utf-8")
    return root


@pytest.fixture
def settings_for(tmp_path, kb_dir) -> Callable[..., Settings]:
    """Factory: Settings with data_dir under tmp_path and knowledge_dir = kb_dir unless overridden.

    Extra keyword arguments are further env vars, e.g. MLSD_CHROMA_URL="http://...".
    """
    def make(data_dir: Path | None = None, knowledge_dir: Path | None = None, **env: str) -> Settings:
        return load_settings({
            "MLSD_DATA_DIR": str(data_dir or tmp_path / "data"),
            "MLSD_KNOWLEDGE_DIR": str(knowledge_dir or kb_dir),
            "MLSD_VOICE": "offline",
            **env,
        })

    return make


@pytest.fixture(scope="session")
def real_index_settings(tmp_path_factory) -> Settings:
    """Settings whose data dir holds an index of the REAL knowledge base, built once per session.

    Treat it as read-only: several test files search it.
    """
    from mlsd_bot.store import ingest

    settings = load_settings({
        "MLSD_DATA_DIR": str(tmp_path_factory.mktemp("real-index")),
        "MLSD_KNOWLEDGE_DIR": str(REAL_KNOWLEDGE),
        "MLSD_VOICE": "offline",
    })
    ingest(settings, progress=None)
    return settings



# --- the interviewer's dependencies, built once per session ------------------------

class FakeClock:
    """A clock the test moves by hand (epoch-like seconds): no test waits or depends on real time."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def base_deps(real_index_settings):
    """Deps over the real knowledge base; read-only, so tests share them."""
    from mlsd_bot.interview import build_deps

    return build_deps(real_index_settings, clock=FakeClock())


@pytest.fixture
def cli_in_process(monkeypatch, tmp_path, base_deps) -> Path:
    """main() in-process over the shared offline deps, with its own data dir (returned: tmp_path)."""
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLSD_VOICE", "offline")
    # mlsd_bot.chat binds build_deps when first imported: import it before the patch, or a patched
    # function would stay in it for later tests of this worker.
    importlib.import_module("mlsd_bot.chat")
    monkeypatch.setattr("mlsd_bot.interview.build_deps",
                        lambda settings, voice=None, clock=time.time: dataclasses.replace(base_deps, clock=clock))
    return tmp_path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps(base_deps, clock):
    """The shared deps with this test's own clock."""
    return dataclasses.replace(base_deps, clock=clock)


@pytest.fixture(scope="module")
def app(request, real_index_settings, tmp_path_factory, subprocess_env, _child_guard):
    """The real browser app (python app.py) on a free loopback port, over a copy of the real index."""
    from support.web_server import launch_app

    workdir = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    server = launch_app(real_index_settings.data_dir, workdir, subprocess_env(), _child_guard[1])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (never a downloaded one), one per test module."""
    from playwright.sync_api import sync_playwright
    from support.web_page import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
