"""`provision status --watch`: the real CLI against a state store with hosts in different states, on
a pseudo-terminal (the rich live table), through a pipe (plain lines, one per change, no control
codes) and as JSON lines; each sees the store change under it and ends with exit 0 on Ctrl-C. The
wait column comes from the record `WaitJournal` keeps (provision.flow.waitjournal)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provision.cli.fleetview import duration_text, fleet_lines
from provision.flow.logprogress import PlainProgress
from provision.flow.waitjournal import WAITING, WaitJournal, current_wait
from provision.store.state import HostState, RunStatus, StateStore, StepOutcome
from tests.conftest import PROFILES, REPO
from tests.support.postgres import Server, postgres_or_skip
from tests.support.procs import stop_pid

COMPUTE, EXPER, MASTER = "inferno-host-compute-1", "inferno-host-exper-1", "inferno-host-master"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
WAIT_WHAT = "the installer's callback from 10.0.2.11"


@pytest.fixture(scope="module")
def pg() -> Iterator[Server]:
    with postgres_or_skip() as server:
        yield server


class Writer:
    """What a controller writes while it runs the hosts: the journal, and each host's wait recorded
    by the WaitJournal around its progress (one for the whole run, as in provision.cli.launch)."""

    def __init__(self, state: str) -> None:
        self.store = StateStore.open(state)
        self.journal = WaitJournal(PlainProgress(io.StringIO()), self.store)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def seed(self) -> None:
        """compute-1 waits in wait_install; exper-1 was accepted; master was never seen (enrolled)."""
        store, journal = self.store, self.journal
        for s in (HostState.inspected, HostState.provisioning):
            store.set_host_state(COMPUTE, s, "test")
        run = store.create_run(COMPUTE, "provision")
        for step in ("inspect", "pxe_boot"):
            store.step_started(run.id, step)
            store.step_finished(run.id, step, StepOutcome.ok)
        store.step_started(run.id, "wait_install")
        journal.step_started(COMPUTE, "wait_install", "wait for the installer")
        journal.waiting(COMPUTE, "wait_install", WAIT_WHAT, 0.0, 3600.0)
        journal.waiting(COMPUTE, "wait_install", WAIT_WHAT, 10.0, 3600.0)  # a repeat: no second row
        for s in (HostState.provisioning, HostState.installed, HostState.burning_in, HostState.accepted):
            store.set_host_state(EXPER, s, "test")
        done = store.create_run(EXPER, "provision")
        store.step_started(done.id, "report")
        store.step_finished(done.id, "report", StepOutcome.ok)
        store.add_event(EXPER, "acceptance", {"verdict": "accepted"}, run_id=done.id)
        store.finish_run(done.id, RunStatus.succeeded)

    def advance(self) -> None:
        """compute-1's install calls back: the wait ends, the host is installed and waits for nothing."""
        store, journal = self.store, self.journal
        run = store.latest_run(COMPUTE)
        assert run is not None
        store.step_finished(run.id, "wait_install", StepOutcome.ok)
        journal.step_finished(COMPUTE, "wait_install", "ok", 1.0, "")
        store.set_host_state(COMPUTE, HostState.installed, "test")
        store.step_started(run.id, "wait_ssh")
        journal.step_started(COMPUTE, "wait_ssh", "wait for SSH")


def argv(state: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "provision", "--profiles", str(PROFILES), "--state", state,
            "status", "--watch", "--interval", "0.2", *extra]  # fmt: skip


class Output:
    """Everything a process wrote to `fd`, read as it comes."""

    def __init__(self, fd: int) -> None:
        self.fd, self.text = fd, ""

    def until(self, done: Callable[[str], bool], timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while not done(self.text):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"output never showed what was expected; got:\n{self.text[-3000:]}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the pty's other side closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"output ended early; got:\n{self.text[-3000:]}")
                self.text += chunk.decode(errors="replace")
        return self.text


def _stop_with_ctrl_c(proc: subprocess.Popen[bytes]) -> int:
    os.kill(proc.pid, signal.SIGINT)
    return proc.wait(timeout=30)


def _row(text: str, host: str, *cells: str) -> bool:
    """A table row (or plain line) of `host` showing every one of `cells`."""
    return any(host in line and all(c in line for c in cells) for line in ANSI.sub("", text).splitlines())


def _last_row(text: str, host: str) -> str:
    return [line for line in ANSI.sub("", text).splitlines() if host in line][-1]


def test_watch_on_a_terminal_draws_a_live_table_that_follows_the_store(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    writer = Writer(state)
    writer.seed()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv(state), stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=env,
                            start_new_session=True)  # fmt: skip
    os.close(slave)
    out = Output(master)
    try:
        out.until(
            lambda t: (
                _row(t, COMPUTE, "provisioning", "wait_install", WAIT_WHAT) and _row(t, MASTER, "enrolled")
            )
        )
        assert _row(out.text, EXPER, "accepted", "report (ok)", "accepted")
        assert "\x1b[" in out.text  # rich drew it: a terminal gets the live table
        mark = len(out.text)
        writer.advance()
        out.until(lambda t: _row(t[mark:], COMPUTE, "installed", "wait_ssh"))
        assert WAIT_WHAT not in _last_row(out.text, COMPUTE)  # the wait ended with its step
        assert _stop_with_ctrl_c(proc) == 0
    finally:
        stop_pid(proc.pid)
        os.close(master)
        writer.store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_watch_without_a_terminal_prints_one_plain_line_per_change(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    state = str(tmp_path / "state")
    if engine == "postgresql":
        server: Server = request.getfixturevalue("pg")
        state = server.url(server.new_database(), tmp_path / "shared")
    writer = Writer(state)
    writer.seed()
    proc = subprocess.Popen(argv(state), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            start_new_session=True)  # fmt: skip
    assert proc.stdout is not None
    out = Output(proc.stdout.fileno())
    try:
        out.until(lambda t: t.count("\n") >= 3)
        first = out.text.splitlines()
        assert f'{COMPUTE} state=provisioning step=wait_install waiting_for="{WAIT_WHAT}"' in first[0]
        assert f"{EXPER} state=accepted step=report(ok)" in first[1] and first[1].endswith("verdict=accepted")
        assert f"{MASTER} state=enrolled step=- elapsed=- verdict=-" in first[2]
        writer.advance()
        out.until(lambda t: f"{COMPUTE} state=installed step=wait_ssh elapsed=" in t)
        time.sleep(0.6)  # a few more refreshes, which change nothing
        assert _stop_with_ctrl_c(proc) == 0
        rest = proc.stdout.read().decode()
        text = out.text + rest
        assert "\x1b" not in text
        lines = text.splitlines()
        assert [line.split()[1] for line in lines] == [COMPUTE, EXPER, MASTER, COMPUTE]
        assert "waiting_for" not in lines[3]
        assert proc.stderr is not None and proc.stderr.read() == b""
    finally:
        stop_pid(proc.pid)
        writer.store.close()


def test_watch_json_prints_one_object_per_refresh(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    writer = Writer(state)
    writer.seed()
    proc = subprocess.Popen(argv(state, "--json", COMPUTE), stdout=subprocess.PIPE, cwd=REPO,
                            start_new_session=True)  # fmt: skip
    assert proc.stdout is not None
    out = Output(proc.stdout.fileno())
    try:
        out.until(lambda t: t.count("\n") >= 2)
        writer.advance()
        out.until(lambda t: '"state": "installed"' in t)
        assert _stop_with_ctrl_c(proc) == 0
        objects = [json.loads(line) for line in (out.text + proc.stdout.read().decode()).splitlines()]
        assert len(objects) >= 3
        first, last = objects[0], objects[-1]
        assert [h["host"] for h in first["hosts"]] == [COMPUTE]  # HOST: that host only
        host = first["hosts"][0]
        assert (host["state"], host["step"], host["step_outcome"], host["waiting_for"], host["verdict"]) == (
            "provisioning", "wait_install", None, WAIT_WHAT, None
        )  # fmt: skip
        assert host["run_status"] == "running" and host["elapsed_s"] >= 0
        assert first["counts"] == {"provisioning": 1}
        moved = last["hosts"][0]
        assert (moved["state"], moved["step"], moved["waiting_for"]) == ("installed", "wait_ssh", None)
    finally:
        stop_pid(proc.pid)
        writer.store.close()


def test_watch_rejects_bad_input_in_one_line(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "provision", "--profiles", str(PROFILES), "--state", str(tmp_path)]
    for extra, expected in (
        (["--interval", "0"], "0 is not in the range x>=0.1"),
        (["no-such-host"], "no-such-host"),
    ):
        proc = subprocess.run(
            [*base, "status", "--watch", *extra], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_the_wait_record_is_written_once_per_wait_and_ends_with_the_wait(tmp_path: Path) -> None:
    with Writer(str(tmp_path / "state")) as writer:
        writer.seed()
        store = writer.store
        run = store.latest_run(COMPUTE)
        assert run is not None
        rows = store.events(host=COMPUTE, kind=WAITING)
        assert [r.payload["what"] for r in rows] == [WAIT_WHAT]  # the repeated report wrote nothing
        wait = current_wait(store, COMPUTE, run)
        assert wait is not None and (wait.step, wait.what) == ("wait_install", WAIT_WHAT)
        journal = WaitJournal(PlainProgress(io.StringIO()), store)  # another controller's journal
        journal.note(COMPUTE, "wait_install", "nothing to end here")
        assert current_wait(store, COMPUTE, run) is not None
        journal = writer.journal
        journal.note(COMPUTE, "wait_install", "installer started")
        assert current_wait(store, COMPUTE, run) is None  # anything but a wait ends it
        journal.note(COMPUTE, "wait_install", "again")
        assert len(store.events(host=COMPUTE, kind=WAITING)) == 2  # and only once
        # A fleet's wait for a slot comes before the host's run: it shows until a later run starts.
        journal.waiting(MASTER, "-", "a slot: 4 host(s) in flight (--parallel)", 0.0, 0.0)
        assert current_wait(store, MASTER, None) is not None
        later = store.create_run(MASTER, "provision")
        assert current_wait(store, MASTER, later) is None
        # A wait of a run that has ended is over, whatever was last recorded.
        journal.waiting(COMPUTE, "wait_install", "power", 0.0, 0.0)
        store.finish_run(run.id, RunStatus.failed, keep_tokens=True)
        ended = store.get_run(run.id)
        assert current_wait(store, COMPUTE, ended) is None


def test_a_wait_whose_figures_alone_change_is_rewritten_at_most_every_rewrite_s(tmp_path: Path) -> None:
    now = [0.0]
    with StateStore.open(tmp_path / "state") as store:
        journal = WaitJournal(PlainProgress(io.StringIO()), store, clock=lambda: now[0])
        store.create_run(COMPUTE, "provision")
        for t, what in (
            (0.0, "power: inferno-pdu-circle2-1 at 4.1 of 4.99 kW"),
            (10.0, "power: inferno-pdu-circle2-1 at 4.3 of 4.99 kW"),  # figures only, too soon: no row
            (20.0, "a BMC request slot of https://10.0.2.101"),  # another wait: a row at once
            (25.0, "power: inferno-pdu-circle2-1 at 4.4 of 4.99 kW"),
            (40.0, "power: inferno-pdu-circle2-1 at 4.2 of 4.99 kW"),  # too soon
            (55.0, "power: inferno-pdu-circle2-1 at 4.0 of 4.99 kW"),  # REWRITE_S later: a row
        ):
            now[0] = t
            journal.waiting(COMPUTE, "start_burnin", what, t, 0.0)
        rows = [r.payload["what"] for r in store.events(host=COMPUTE, kind=WAITING)]
    assert rows == [
        "power: inferno-pdu-circle2-1 at 4.1 of 4.99 kW",
        "a BMC request slot of https://10.0.2.101",
        "power: inferno-pdu-circle2-1 at 4.4 of 4.99 kW",
        "power: inferno-pdu-circle2-1 at 4.0 of 4.99 kW",
    ]


def test_fleet_lines_read_every_host_and_a_missing_store() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    lines = fleet_lines(None, [MASTER, COMPUTE], now)
    assert [(x.host, x.state, x.step_text, x.waiting_for) for x in lines] == [
        (COMPUTE, "enrolled", "-", None),
        (MASTER, "enrolled", "-", None),
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4, "0s"), (59, "59s"), (61, "1m01s"), (3600 * 3 + 125, "3h02m"),
     (timedelta(days=2, hours=4, minutes=5).total_seconds(), "2d04h")],
)  # fmt: skip
def test_duration_text(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text
