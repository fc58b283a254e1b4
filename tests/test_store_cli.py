"""The state store and the exit codes, through the CLI: read commands open the store read-only (never
creating, migrating or writing it, and working in a read-only state folder), a run that stops on an
error is marked failed, `--state` naming a file is exit 3, and a bug is one line with a log, exit 3."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from provision.cli import main as cli
from provision.store.db import SCHEMA_VERSION
from provision.store.state import HostState, RunStatus, StateStore, StepOutcome
from tests.conftest import PROFILES

COMPUTE = "inferno-host-compute-1"
DB = "state.sqlite3"


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _populated(state: Path) -> str:
    with StateStore.open(state) as store:
        run = store.create_run(COMPUTE, "provision")
        store.step_started(run.id, "inspect")
        store.step_finished(run.id, "inspect", StepOutcome.failed, message="BMC timed out")
        store.finish_run(run.id, RunStatus.failed)
        store.set_host_state(COMPUTE, HostState.inspected, "test")
    return run.id


def _empty(state: Path) -> str:
    (state / DB).write_bytes(b"")
    return f"{state / DB}: expected a provision state database, got an empty one"


def _foreign(state: Path) -> str:
    db = sqlite3.connect(state / DB)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()
    return (
        f"{state / DB}: expected a provision state database (a schema_version table), "
        "got another program's database (1 table(s), no schema_version)"
    )


def _older(state: Path) -> str:
    _populated(state)
    db = sqlite3.connect(state / DB)
    db.execute("UPDATE schema_version SET version = 1")
    db.commit()
    db.close()
    return f"{state / DB}: expected schema version {SCHEMA_VERSION}, got 1, from an older provision"


@pytest.mark.parametrize("make", [_empty, _foreign, _older], ids=["empty", "foreign", "older"])
@pytest.mark.parametrize("command", [["status"], ["status", COMPUTE], ["show", COMPUTE]])
def test_read_commands_refuse_a_store_they_would_have_to_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, command: list[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    assert callable(make)
    expected = make(state)
    before = _digest(state / DB)
    code, out, err = _cli(["--profiles", str(PROFILES), "--state", str(state), *command], capsys)
    assert (code, out) == (3, "")
    assert err.startswith(f"provision: {expected}") and err.count("\n") == 1, err
    assert _digest(state / DB) == before  # not created, not migrated, not written


def test_a_writer_refuses_another_programs_database_untouched(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    expected = _foreign(state)
    before = _digest(state / DB)
    proc = _provision(["--state", str(state), "host", COMPUTE, "--no-serve"])
    assert proc.returncode == 3 and proc.stderr == f"provision: {expected}\n"
    assert _digest(state / DB) == before


def _provision(args: list[str], prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "provision", "--profiles", str(PROFILES), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _read_only(state: Path) -> list[str]:
    """A command prefix that shows `state` read-only: a read-only bind mount in a private mount
    namespace for root (whom permission bits do not stop), the permission bits for anyone else."""
    if os.geteuid() != 0:
        state.chmod(0o500)
        return []
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"root, but no private mount namespace here: {probe.stderr.decode().strip()}")
    return ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{state}" "{state}" && exec "$@"', "sh"]


def test_read_commands_work_in_a_read_only_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_id = _populated(state)
    prefix = _read_only(state)
    try:
        listing = _provision(["--state", str(state), "status", "--json"], prefix)
        assert (listing.returncode, listing.stderr) == (0, "")
        hosts = {h["name"]: h for h in json.loads(listing.stdout)["hosts"]}
        assert (hosts[COMPUTE]["state"], hosts[COMPUTE]["last_run_id"]) == ("inspected", run_id)
        one = _provision(["--state", str(state), "status", COMPUTE, "--json"], prefix)
        assert (one.returncode, one.stderr) == (0, "")
        assert [(r["id"], r["status"]) for r in json.loads(one.stdout)["runs"]] == [(run_id, "failed")]
        show = _provision(["--state", str(state), "show", COMPUTE, "--json"], prefix)
        assert (show.returncode, show.stderr) == (0, "")
        assert json.loads(show.stdout)["lifecycle"]["state"] == "inspected"
    finally:
        state.chmod(0o700)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_a_run_that_fails_at_inspect_is_failed_in_status_and_resumed(
    tmp_path: Path,
    profiles_copy: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = profiles_copy / "hosts.yaml"
    text = hosts.read_text()
    dead_bmc = f"      url: http://127.0.0.1:{_free_port()}\n"
    text = text.replace("      url: https://10.0.1.21\n", dead_bmc, 1)
    hosts.write_text(
        text.replace("      verify_tls: true\n", "      verify_tls: true\n      attempts: 1\n", 1)
    )
    monkeypatch.setenv("INFERNO_BMC_COMPUTE_1", "admin:not-a-real-password")
    state = tmp_path / "state"
    base = ["--profiles", str(profiles_copy), "--state", str(state)]
    host = [*base, "host", COMPUTE, "--listen", f"127.0.0.1:{_free_port()}", "--json"]

    def runs() -> list[tuple[str, str, list[tuple[str, str | None]]]]:
        code, out, err = _cli([*base, "status", COMPUTE, "--json"], capsys)
        assert (code, err) == (0, "")
        return [
            (r["id"], r["status"], [(s["step"], s["outcome"]) for s in r["steps"]])
            for r in json.loads(out)["runs"]
        ]

    code, _, err = _cli(host, capsys)
    assert code == 3 and "inspect: failed: http://127.0.0.1:" in err
    [(run_id, status, steps)] = runs()
    assert (status, steps) == ("failed", [("inspect", "failed")])
    code, _, _ = _cli(host, capsys)  # the rerun resumes the same run, and it fails the same way
    assert code == 3
    assert runs() == [(run_id, "failed", [("inspect", "failed"), ("inspect", "failed")])]


def test_state_naming_a_file_is_one_line_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "state"
    afile.write_text("")
    code, out, err = _cli(["--profiles", str(PROFILES), "--state", str(afile), "status"], capsys)
    assert (code, out, err) == (3, "", f"provision: --state {afile}: expected a directory, got a file\n")
    code, out, err = _cli(["--no-such-option"], capsys)  # click's own usage errors stay exit 2
    assert code == 2 and "No such option '--no-such-option'" in err


@pytest.mark.parametrize("state_exists", [True, False], ids=["in-state-dir", "in-temp-dir"])
def test_a_bug_is_one_line_exit_3_and_its_traceback_goes_to_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, state_exists: bool
) -> None:
    def broken(app: object) -> None:
        raise RuntimeError("hosts went missing\nsecond line")

    # The module, not the click command of the same name that the package exports.
    monkeypatch.setattr(importlib.import_module("provision.cli.commands.status"), "_all", broken)
    state = tmp_path / "state"
    if state_exists:
        state.mkdir()
    code, out, err = _cli(["--profiles", str(PROFILES), "--state", str(state), "status"], capsys)
    assert (code, out) == (3, "")
    match = re.fullmatch(
        r"provision: internal error \(a bug\): RuntimeError: hosts went missing; traceback in (\S+)\n", err
    )
    assert match, err
    log = Path(match[1])
    try:
        if state_exists:
            assert log.parent == state / "logs"
        else:
            assert log.parent.parent == Path(tempfile.gettempdir()) and not state.exists()
        assert re.fullmatch(r"crash-\d{8}T\d{6}-\d+\.log", log.name)
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        text = log.read_text()
        assert "Traceback (most recent call last)" in text and "in broken" in text
        assert str(PROFILES) not in text  # the command line is not written
    finally:
        if not state_exists:
            shutil.rmtree(log.parent)
