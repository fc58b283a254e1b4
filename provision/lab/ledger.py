"""Adapter: the lab's state file. Every PID, namespace and domain the lab creates is written here
BEFORE the next step runs, so `lab down` can undo a lab that failed half way up.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.model.errors import BadInput

LEDGER = "lab.json"


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

    @property
    def path(self) -> Path:
        return Path(self.directory) / LEDGER

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, self.path)

    def add_proc(self, proc: Proc) -> None:
        self.procs.append(proc)
        self.save()

    def pid(self, name: str) -> int | None:
        return next((p.pid for p in self.procs if p.name == name), None)


def load(path: Path) -> Ledger | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: expected the lab's JSON state file, got {exc}") from None
    procs = [Proc(**p) for p in data.pop("procs", [])]
    return Ledger(procs=procs, **data)
