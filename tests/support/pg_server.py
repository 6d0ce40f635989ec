"""A throw-away PostgreSQL server for the tests and the load bench: Debian's binaries, a temp dir.

`PgServer.start()` runs initdb and pg_ctl as a non-root user (PostgreSQL refuses
root: as root they run as the `postgres` user the Debian package creates) into a
fresh temp dir, listening only on 127.0.0.1 on a free port, with a password login
(scram-sha-256). `stop()` shuts it down and removes the dir. When the binaries are
missing, `MissingPostgres` says what to install (`make test` installs them as root
through scripts/test-deps.sh).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = ("PostgreSQL is not installed: run 'sudo apt-get install postgresql' "
                "(`make test` installs it when run as root, via scripts/test-deps.sh)")
USER = "mlsd"


class MissingPostgres(RuntimeError):
    pass


def bin_dir() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps initdb out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise MissingPostgres(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.bin = bin_dir()
        self.port = free_port()
        self.password = "pw-" + secrets.token_hex(8)  # the tests look for it in logs and errors
        self.root = Path(tempfile.mkdtemp(prefix="mlsd-pg-"))  # under /tmp: the postgres user can reach it
        self.data = self.root / "data"
        self._as = self._run_as()

    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        shutil.chown(self.root, "postgres", "postgres")
        return ["runuser", "-u", "postgres", "--"]

    def _cmd(self, *args: str) -> None:
        out = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")

    def start(self) -> "PgServer":
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self._as:
            shutil.chown(pwfile, "postgres", "postgres")
        self._cmd(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", opts, "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
