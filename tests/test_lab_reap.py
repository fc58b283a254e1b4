"""`provision lab up` first reaps the labs left behind (an owner killed with SIGKILL, processes that
died): found through this lab's ledger and the machine's registry of ledgers, stopped by PID, the
registry cleaned. No VMs: the ledgers are made by hand around `sleep` processes and dead PIDs."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.lab import ledger as ledgers
from provision.lab import system
from provision.lab.lab import open_lab, reap_stale
from provision.lab.ledger import Ledger, Proc, load
from provision.model.errors import BadInput


@pytest.fixture(autouse=True)
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine's registry, here a private one: a test never sees or reaps a real lab."""
    reg = tmp_path / "registry"
    monkeypatch.setattr(ledgers, "REGISTRY", reg)
    return reg


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _sleeper(started: list[subprocess.Popen[bytes]]) -> int:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    started.append(proc)
    deadline = time.monotonic() + 10
    while not system.is_ours(proc.pid, "sleep") and time.monotonic() < deadline:
        time.sleep(0.02)  # until exec has replaced the forked child's command line
    return proc.pid


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _ledger(
    state: Path, lab_id: str, procs: list[Proc], owner: tuple[int, int | None] | None = None
) -> Ledger:
    root = state / "lab" / lab_id
    root.mkdir(parents=True)
    led = Ledger(lab_id=lab_id, directory=str(root), procs=procs, up=True)
    if owner is not None:
        led.owner_pid, led.owner_start = owner
    led.save()  # into the lab's directory and the registry
    return led


def test_up_first_reaps_a_lab_with_dead_processes_and_one_whose_owner_is_gone(
    tmp_path: Path, registry: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    here, elsewhere = tmp_path / "state", tmp_path / "killed-test-state"
    dead = _dead_pid()
    broken = _sleeper(sleepers)  # this lab's mirror lives on, its BMC died
    _ledger(here, "r1", [Proc("mirror", broken, "sleep"), Proc("sushy", dead, "sushy-emulator")])
    orphan = _sleeper(sleepers)  # a test session's lab; the session was killed
    _ledger(elsewhere, "r2", [Proc("mirror", orphan, "sleep")], owner=(dead, 12345))
    in_use = _sleeper(sleepers)  # another session's lab, its owner (here: us) alive
    me = os.getpid()
    _ledger(elsewhere, "r3", [Proc("mirror", in_use, "sleep")], owner=(me, system.start_time(me)))
    kept = _sleeper(sleepers)  # someone's `lab up` left running, one daemon dead: not ours to stop
    _ledger(elsewhere, "r4", [Proc("mirror", kept, "sleep"), Proc("sushy", dead, "sushy-emulator")])

    lines = reap_stale(open_lab(here, "r1"))

    assert lines == [
        f"lab r1 ({here}/lab/r1): stale, sushy (pid {dead}) no longer running: stopped mirror (pid {broken})",
        f"lab r2 ({elsewhere}/lab/r2): stale, its owner, pid {dead}, is gone: stopped mirror (pid {orphan})",
    ]
    assert not system.is_ours(broken, "sleep") and not system.is_ours(orphan, "sleep")
    assert system.is_ours(in_use, "sleep") and system.is_ours(kept, "sleep")
    assert sorted(p.name for p in registry.iterdir()) == ["r3.json", "r4.json"]
    for lab_id, root in (("r1", here), ("r2", elsewhere)):
        left = load(root / "lab" / lab_id / "lab.json")
        assert left is not None and (left.procs, left.up, left.owner_pid) == ([], False, None)
    assert reap_stale(open_lab(here, "r1")) == []  # nothing stale is left


def test_up_refuses_while_the_lab_is_up_and_well_here_or_elsewhere(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    here, there = tmp_path / "state", tmp_path / "other-state"
    _ledger(here, "r5", [Proc("mirror", _sleeper(sleepers), "sleep")])
    with pytest.raises(BadInput) as exc:
        reap_stale(open_lab(here, "r5"))
    assert str(exc.value) == (
        f"lab r5: expected it down, got it up in {here} "
        f"(run `provision --state {here} lab down --id r5` first)"
    )
    _ledger(there, "r6", [Proc("mirror", _sleeper(sleepers), "sleep")])  # its namespaces are ours too
    with pytest.raises(BadInput) as exc:
        reap_stale(open_lab(here, "r6"))
    assert str(exc.value).startswith(f"lab r6: expected it down, got it up in {there} ")
    assert all(proc.poll() is None for proc in sleepers)
