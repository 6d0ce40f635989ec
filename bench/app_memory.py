"""First run and memory of the real browser app: time to the first page, then RSS over many interviews.

From an empty data dir, as after a fresh clone's install: `python app.py` (what
`make run` runs; it builds the index from the shipped vectors) until its page answers,
the first question and answer; then N interviews
(default 200), each a new browser session through the app's API (gradio_client): start,
four candidate messages, end. The app's resident memory is read from /proc after
start-up and every 20 interviews. Needs the `test` extra (gradio_client).
Usage: .venv/bin/python bench/app_memory.py [--interviews N]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# Before gradio_client is imported: no analytics, and huggingface_hub stays offline.
os.environ.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_OFFLINE="1")

from gradio_client import Client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CASES = ["news_feed", "video_recommendation", "harmful_content", "ad_click_prediction", "visual_search"]
MESSAGES = [  # our own words: one candidate answer per early phase, then the interview ends
    "I'd start by asking how many daily users we serve and what the latency budget per request is.",
    "I'd frame it as ranking: predict the probability of a meaningful interaction for each candidate.",
    "Training data comes from impression logs joined with later interactions, split by time.",
    "A popularity baseline first, then a two-tower retriever feeding a gradient boosted ranker.",
]
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for_page(proc: subprocess.Popen, url: str, limit_s: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        if proc.poll() is not None:
            sys.exit(f"app.py exited with {proc.returncode}")
        try:
            with _DIRECT.open(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.1)
    sys.exit(f"no page at {url} after {limit_s:.0f} s")


def interview(client: Client, case: str) -> None:
    client.reset_session()  # a new browser session: its own gr.State
    client.predict(case, "senior", 45, "offline", api_name="/start")
    for text in MESSAGES:
        client.predict(text, api_name="/send")
    client.predict("/end", api_name="/send")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interviews", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlsd-app-bench-") as tmp:
        env = {**os.environ, "MLSD_DATA_DIR": tmp, "MLSD_VOICE": "offline"}
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        log = open(Path(tmp) / "app.log", "wb")
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            page_s = wait_for_page(proc, url)
            print(f"fresh data dir (no index yet): app.py serves its page after {page_s:.1f} s")
            print(f"app RSS after start-up: {rss_mb(proc.pid):.0f} MB")
            client = Client(url, verbose=False, analytics_enabled=False, download_files=str(Path(tmp) / "dl"))
            t1 = time.perf_counter()
            client.reset_session()
            client.predict(CASES[0], "senior", 45, "offline", api_name="/start")
            client.predict(MESSAGES[0], api_name="/send")
            print(f"first question and first answer: {time.perf_counter() - t1:.1f} s")
            peak = 0.0
            for i in range(1, args.interviews + 1):
                interview(client, CASES[i % len(CASES)])
                if i % 20 == 0 or i == args.interviews:
                    now = rss_mb(proc.pid)
                    peak = max(peak, now)
                    print(f"  after {i:4d} interviews: RSS {now:.0f} MB", flush=True)
            client.close()
            print(f"app RSS after {args.interviews} interviews: {rss_mb(proc.pid):.0f} MB (highest sample {peak:.0f} MB)")
        finally:
            proc.kill()
            proc.wait()
            log.close()


if __name__ == "__main__":
    main()
