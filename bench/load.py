"""Load on the real browser app: N simulated candidates through its API (gradio_client).

Each candidate is one browser session (its own gradio_client.Client): /start, then
`--messages` answers, each after `--think` seconds, then /end. Reported per run:
turns per second (answers and /end, over the wall time of the run; candidates
start spread over one think time unless --together), p50/p99 latency
of one turn (a /send until its reply has streamed in), errors, a cross-talk check
(every candidate's final transcript holds exactly its own messages, in order), and
each app process's RSS before the run, right after it, and after the sessions
ended (gradio drops a browser session's state some time after its last event).

`--processes 2` runs two app processes on one PostgreSQL database (a throw-away
server started here from Debian's binaries, as tests/test_postgres.py does), with
the candidates spread over both as a round-robin load balancer would; each candidate
starts on one process and continues on the other (/resume), so every turn after
the first moves between processes.
Usage: .venv/bin/python bench/load.py [--candidates 8 --messages 6 --think 0 --processes 1]
       .venv/bin/python bench/load.py --candidates 50 --think 5      # the "50 thinking candidates" case
Load figures on a machine shared with other work are noisy: run it on an idle one.
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# Before gradio_client is imported: no analytics, and huggingface_hub stays offline.
os.environ.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_OFFLINE="1")

from gradio_client import Client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the throw-away PostgreSQL server of the tests
from support.pg_server import PgServer, free_port  # noqa: E402

CASES = ["news_feed", "video_recommendation", "harmful_content", "ad_click_prediction", "visual_search"]
ANSWERS = [  # our own words; each candidate adds its own tag so transcripts can be told apart
    "I'd first ask how many daily users we serve and what the latency budget per request is",
    "I'd frame it as ranking: predict the probability of a meaningful interaction per candidate item",
    "Training data comes from impression logs joined with later interactions, split by time",
    "A popularity baseline first, then a two-tower retriever feeding a gradient boosted ranker",
    "Offline I'd track NDCG on held-out days, then run an A/B test on the engagement metric",
    "Serve with precomputed item embeddings and an approximate nearest neighbour index under 100 ms",
    "Monitor feature drift with the population stability index and retrain weekly",
]
SETTLE_S = 75  # after the run: time for gradio to drop finished sessions' state before the last RSS
# gradio_client opens a new httpx client per request, and each one loads the system's CA
# certificates (~20 ms of CPU) although the app is plain http on loopback: ssl_verify=False
# (no TLS is used at all) cuts the load generator's CPU, which shares the cores with the app, by about 4/5.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)  # /start (and /resume) until the first question
    errors: list[str] = field(default_factory=list)
    crosstalk: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_app(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(data_dir.parent / f"app-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                            env={**env, "MLSD_DATA_DIR": str(data_dir)}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"app.py exited with {proc.returncode}; see {log.name}")
        try:
            with _DIRECT.open(url + "config", timeout=2):
                print(f"app.py pid {proc.pid} at {url}", flush=True)  # e.g. for py-spy
                return proc, url
        except OSError:
            time.sleep(0.2)
    sys.exit(f"no page at {url}")


def user_texts(chat: list[dict]) -> list[str]:
    return [html.unescape("".join(p["text"] for p in m["content"] if p.get("type") == "text"))
            for m in chat if m["role"] == "user"]


def clients(i: int, urls: list[str]) -> list[Client]:
    """Candidate i's browser sessions: one on its first process and, with two, one on the other.
    Made before the clock starts (reading an app's config costs the client ~0.3 s of CPU)."""
    first, other = urls[i % len(urls)], urls[(i + 1) % len(urls)]
    return [Client(u, verbose=False, analytics_enabled=False, download_files=False, ssl_verify=False)
            for u in dict.fromkeys([first, other])]


def candidate(i: int, sessions: list[Client], args, tally: Tally) -> None:
    """One candidate's interview; with two processes it starts on one and goes on on the other."""
    try:
        if not args.together:  # arrivals spread over one think time, as independent candidates would be
            time.sleep(args.think * i / args.candidates)
        client, t0 = sessions[0], time.perf_counter()
        started = client.predict(CASES[i % len(CASES)], "senior", 45, "offline", api_name="/start")
        sid, key = started[0], started[-1]  # the last output: this client's owner key (no login)
        if len(sessions) > 1:
            client = sessions[1]
            client.predict(sid, key, api_name="/resume")
        with tally.lock:
            tally.starts.append(time.perf_counter() - t0)
        sent = [f"{ANSWERS[k % len(ANSWERS)]} (candidate {i}, answer {k})." for k in range(args.messages)] + ["/end"]
        chat = []
        for text in sent:
            time.sleep(args.think)
            t0 = time.perf_counter()
            chat = client.predict(text, api_name="/send")[0]
            with tally.lock:
                tally.latencies.append(time.perf_counter() - t0)
        if user_texts(chat) != sent:
            with tally.lock:
                tally.crosstalk.append(f"candidate {i}: {user_texts(chat)[:3]}...")
    except Exception as e:  # counted and shown; the run goes on
        with tally.lock:
            tally.errors.append(f"candidate {i}: {type(e).__name__}: {str(e)[:160]}")
    finally:
        for c in sessions:
            c.close()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mlsd-load-"))
    pg = None
    procs: list[subprocess.Popen] = []
    try:
        env = {**os.environ, "MLSD_VOICE": "offline"}
        env = {k: v for k, v in env.items() if not k.startswith("OPENAI_")}
        if args.processes > 1:
            pg = PgServer().start()
            env["MLSD_DATABASE_URL"] = pg.url()
        first_data = tmp / "p0" / "data"
        first_data.mkdir(parents=True)
        procs_urls = [start_app(first_data, env)]  # builds the index from the shipped vectors
        for n in range(1, args.processes):
            data = tmp / f"p{n}" / "data"
            shutil.copytree(first_data, data, ignore=shutil.ignore_patterns("sessions.sqlite3*"))
            procs_urls.append(start_app(data, env))
        procs, urls = [p for p, _ in procs_urls], [u for _, u in procs_urls]
        for url in urls:  # each process loads its model on its first answer: not part of the run
            warm = Client(url, verbose=False, analytics_enabled=False, download_files=False, ssl_verify=False)
            warm.predict(CASES[0], "senior", 45, "offline", api_name="/start")
            warm.predict(ANSWERS[0], api_name="/send")
            warm.close()
        before = [rss_mb(p.pid) for p in procs]

        tally = Tally()
        threads = [threading.Thread(target=candidate, args=(i, clients(i, urls), args, tally))
                   for i in range(args.candidates)]
        cpu0, own0 = [cpu_s(p.pid) for p in procs], time.process_time()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        cpu = (sum(cpu_s(p.pid) for p in procs) - sum(cpu0), time.process_time() - own0)
        after = [rss_mb(p.pid) for p in procs]
        time.sleep(args.settle)
        settled = [rss_mb(p.pid) for p in procs]
        report(args, tally, wall, cpu, before, after, settled)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(args, tally: Tally, wall: float, cpu: tuple[float, float], before, after, settled) -> None:
    lat = sorted(tally.latencies)
    store = "PostgreSQL" if args.processes > 1 else "SQLite"
    print(f"{args.processes} process(es) on {store}, {args.candidates} candidates x {args.messages + 1} turns, "
          f"think {args.think:g} s{', all in lockstep' if args.together and args.think else ''}")
    if lat:
        print(f"  turns: {len(lat)} in {wall:.1f} s = {len(lat) / wall:.1f} turns/s; "
              f"latency per turn p50 {pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms, "
              f"max {lat[-1] * 1000:.0f} ms")
        if tally.starts:
            starts = sorted(tally.starts)
            print(f"  opening an interview (/start{' and /resume' if args.processes > 1 else ''}): "
                  f"p50 {pct(starts, 50) * 1000:.0f} ms, p99 {pct(starts, 99) * 1000:.0f} ms")
        print(f"  CPU per turn (/start and /resume included): app {cpu[0] / len(lat) * 1000:.0f} ms, "
              f"this load generator {cpu[1] / len(lat) * 1000:.0f} ms "
              "(on the same cores; PostgreSQL's own not counted)")
    print(f"  errors: {len(tally.errors)}; cross-talk: {len(tally.crosstalk)} transcripts with foreign or "
          f"missing messages")
    for line in (tally.errors + tally.crosstalk)[:5]:
        print(f"    {line}")
    for n, (b, a, s) in enumerate(zip(before, after, settled)):
        print(f"  process {n} RSS: {b:.0f} MB before, {a:.0f} MB right after, {s:.0f} MB {args.settle:g} s later "
              f"({(s - b) / b * 100:+.0f}%)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=8)
    p.add_argument("--messages", type=int, default=6, help="answers per candidate (then /end)")
    p.add_argument("--think", type=float, default=0.0, help="seconds a candidate waits before each message")
    p.add_argument("--processes", type=int, choices=(1, 2), default=1)
    p.add_argument("--together", action="store_true",
                   help="all candidates start at once and so send in lockstep (a burst every think time)")
    p.add_argument("--settle", type=float, default=SETTLE_S, help="seconds to wait before the last RSS reading")
    run(p.parse_args())


if __name__ == "__main__":
    main()
