"""Adapter: the lab's state file. Every PID, namespace and domain the lab creates is written here
BEFORE the next step runs, so `lab down` can undo a lab that failed half way up.

Each save is also copied into the machine's registry of labs (REGISTRY/<id>.json, under /run: it
goes with a reboot, as the namespaces and processes do), so that a later `lab up` finds a lab whose
owner was killed, whichever state directory it lived in, and reaps it (provision.lab.reap).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.model.errors import BadInput

LEDGER = "lab.json"
REGISTRY = Path("/run/inferno-provision/labs")


@dataclass
class Proc:
    name: str  # dnsmasq, mirror, virtlogd, libvirtd, sushy
    pid: int
    program: str  # what /proc/PID/cmdline must show for `down` to signal it
    netns: str | None = None


@dataclass
class Ledger:
    lab_id: str
    directory: str
    procs: list[Proc] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    swapped: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> {part: new serial}
    libvirt_uri: str | None = None
    bmc_url: str | None = None
    up: bool = False
    # The process the lab lives with: set while `up` runs, and kept by an owner whose lab must not
    # outlive it (a test session). Its start time (clock ticks since boot) tells a reused PID apart.
    owner_pid: int | None = None
    owner_start: int | None = None

    @property
    def path(self) -> Path:
        return Path(self.directory) / LEDGER

    @property
    def registered(self) -> Path:
        return REGISTRY / f"{self.lab_id}.json"

    def save(self) -> None:
        text = json.dumps(asdict(self), indent=2) + "\n"
        _replace(self.path, text)
        # Best effort: without the copy only this lab's own `up` and `down` find it.
        with contextlib.suppress(OSError):
            REGISTRY.mkdir(parents=True, exist_ok=True, mode=0o700)
            _replace(self.registered, text)

    def unregister(self) -> None:
        """Drop the registry's copy if it is this lab's (a lab of the same id elsewhere keeps its own)."""
        with contextlib.suppress(OSError, BadInput):
            copy = load(self.registered)
            if copy is not None and copy.directory == self.directory:
                self.registered.unlink()

    def add_proc(self, proc: Proc) -> None:
        self.procs.append(proc)
        self.save()

    def pid(self, name: str) -> int | None:
        return next((p.pid for p in self.procs if p.name == name), None)


def _replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load(path: Path) -> Ledger | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: expected the lab's JSON state file, got {exc}") from None
    try:
        procs = [Proc(**p) for p in data.pop("procs", [])]
        return Ledger(procs=procs, **data)
    except TypeError as exc:  # a field missing or unknown: not a ledger this code wrote
        raise BadInput(f"{path}: expected the lab's JSON state file, got {exc}") from None
