"""The one PostgreSQL starter of the tests: the distribution's server (`initdb`, then `postgres`
itself) on a temporary directory, listening on a Unix socket only, always stopped by PID.

The server is run directly rather than through `pg_ctl start`, so that the test owns its PID and
process group (pg_ctl forks the postmaster away), and a failure anywhere still stops it: SIGINT
(PostgreSQL's fast shutdown), then SIGKILL by tests.support.procs.stop_pid. PostgreSQL refuses to run
as root, so under root the server runs as the `postgres` user the package creates, in a directory
it owns. Local connections are trusted, except the role `app`, which needs its password
(scram-sha-256): the tests of PGPASSFILE and password=env: log in as it.

Each test gets a fresh database of its own (`Server.new_database`) on one server per session.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support.procs import stop_pid

APP_ROLE = "app"
APP_PASSWORD = "app-" + secrets.token_hex(8)


def find_bin(name: str) -> str | None:
    """The newest installed PostgreSQL's `name` (Debian keeps them off PATH)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


@dataclass
class Server:
    socket_dir: Path
    root: Path
    pid: int
    superuser: str = "postgres"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=str(self.socket_dir), user=self.superuser, dbname=dbname, autocommit=True)

    def new_database(self) -> str:
        name = "t_" + secrets.token_hex(6)
        with self.admin() as db:
            db.execute(f'CREATE DATABASE "{name}" OWNER "{APP_ROLE}"')
        return name

    def url(self, dbname: str, documents: Path, user: str | None = None, extra: str = "") -> str:
        return (
            f"postgresql://{user or self.superuser}@/{dbname}?host={self.socket_dir}"
            f"&documents={documents}{extra}"
        )


def _as_server_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _own(path: Path, user: str | None) -> None:
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


@contextmanager
def running_postgres(ready_timeout_s: float = 60.0) -> Iterator[Server]:
    initdb, postgres = find_bin("initdb"), find_bin("postgres")
    if initdb is None or postgres is None:
        raise FileNotFoundError("PostgreSQL's initdb/postgres are not installed (make setup installs them)")
    user = _as_server_user()
    # Not under pytest's tmp_path: it is 0700 root's, which the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="provision-pg-"))
    os.chmod(root, 0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    _own(root, user)
    _own(sock, user)
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            user=user,
            cwd=root,
        )
        hba = data / "pg_hba.conf"
        hba.write_text(f"local all {APP_ROLE} scram-sha-256\nlocal all all trust\n")
        _own(hba, user)
        log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below, after the server
        with log:
            proc = subprocess.Popen(
                [postgres, "-D", str(data), "-k", str(sock), "-c", "listen_addresses=", "-c", "fsync=off"],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=user,
                cwd=root,
                start_new_session=True,
            )
            server = Server(sock, root, proc.pid)
            _wait_ready(server, proc, ready_timeout_s)
            with server.admin() as db:
                db.execute(f"CREATE ROLE \"{APP_ROLE}\" LOGIN PASSWORD '{APP_PASSWORD}'")
            yield server
    finally:
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGINT)  # fast shutdown: clients cut, no checkpoint wait
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            stop_pid(proc.pid)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_or_skip() -> Iterator[Server]:
    """For a fixture: the server, or a skip that says why (under CI=true a skip fails the run)."""
    if find_bin("initdb") is None or find_bin("postgres") is None:
        pytest.skip("PostgreSQL's server (initdb, postgres) is not installed here (make setup installs it)")
    with running_postgres() as server:
        yield server


def _wait_ready(server: Server, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log = (server.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"postgres exited with {proc.returncode} before accepting connections:\n{log}")
        try:
            with server.admin():
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
