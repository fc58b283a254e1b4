"""Adapter: read one burn-in run's files (the agent's result, the pre-OS inventory, the telemetry
series) from a run directory, and digest every raw file for the acceptance record.

Layout of a run directory (what the agent writes, plus what the controller adds):
    result.json                the agent's RunResult (burnin.schema), in-OS inventory inside
    inventory-redfish.json     the pre-OS HardwareInventory, when the host was inspected
    <result.telemetry>         the JSON-lines time series the result names (telemetry.jsonl)
    power.jsonl                the PDU outlet and BMC power the controller sampled (provision.pdu.sampler)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burnin.hardware import HardwareInventory, inventory_from_dict
from burnin.schema import SCHEMA_VERSION, RunResult, run_from_dict
from burnin.tools import sha256_file
from provision.acceptance.eventlog import EVENT_LOG_FILE
from provision.acceptance.golden import Golden, golden_from_dict
from provision.acceptance.report.record import RawEvidence
from provision.acceptance.timeseries import DEFAULT_SUMS, Telemetry, merge_series, parse_telemetry
from provision.acceptance.validation.pdu import PowerLog, parse_power_log
from provision.model.errors import BadInput, NotFound
from provision.pdu.meters import POWER_FILE

RESULT_FILE = "result.json"
PRE_OS_FILE = "inventory-redfish.json"
AFTER_FILE = "inventory-redfish-after.json"  # the BMC read again after the burn-in: health, PSUs
RECORD_FILE = "acceptance.json"
# What the controller derives from a run (its record and reports): not raw evidence.
DERIVED = frozenset(
    {
        RECORD_FILE,
        "findings.json",
        "report.html",
        "report.junit.xml",
        "handoff-manifests.yaml",
        "zfs-create.sh",
    }
)
GOLDEN_DIR = "golden"
AGENT_DIR = "agent"
RELATIVE_BEFORE_S = 1e9  # a time below this (2001) is seconds since the start, not an epoch


@dataclass
class RunFiles:
    run: RunResult
    pre_os: HardwareInventory | None
    in_os: HardwareInventory | None
    telemetry: Telemetry | None
    raw: list[RawEvidence]
    directory: Path | None = None
    event_log: dict[str, Any] | None = None  # the BMC's event log after the burn-in (eventlog.json)
    after: HardwareInventory | None = None  # the BMC's inventory after the burn-in (AFTER_FILE)
    power: PowerLog | None = None  # the PDU outlet and BMC power sampled by the controller (POWER_FILE)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(f"{path}: expected a file, got none") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: expected JSON, got {exc}") from None


def parse_result(data: Any, where: str) -> RunResult:
    if not isinstance(data, dict):
        raise BadInput(f"{where}: expected a burn-in result object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BadInput(f"{where}: schema_version: expected {SCHEMA_VERSION}, got {version!r}")
    try:
        return run_from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{where}: expected a burn-in result, got {exc!r}") from None


def parse_inventory(data: Any, where: str) -> HardwareInventory | None:
    if not data:
        return None
    try:
        return inventory_from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{where}: expected a hardware inventory, got {exc!r}") from None


def digest_dir(directory: Path) -> list[RawEvidence]:
    return [
        RawEvidence(str(p.relative_to(directory)), sha256_file(p), p.stat().st_size)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name not in DERIVED
    ]


def read_telemetry(path: Path, sums: Iterable[tuple[str, ...]] = DEFAULT_SUMS) -> Telemetry | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", errors="replace") as f:
        return parse_telemetry(f, sums)


def load_run_dir(directory: Path, sums: Iterable[tuple[str, ...]] = DEFAULT_SUMS) -> RunFiles:
    """`sums`: series pattern groups whose per-sample totals the telemetry keeps (part power)."""
    if not directory.is_dir():
        raise NotFound(f"{directory}: expected a run directory, got no such directory")
    result_path = directory / RESULT_FILE
    run = parse_result(read_json(result_path), str(result_path))
    pre_path = directory / PRE_OS_FILE
    pre = parse_inventory(read_json(pre_path), str(pre_path)) if pre_path.is_file() else None
    in_os = parse_inventory(run.inventory, f"{result_path}: inventory")
    tel = None
    if run.telemetry:
        # The agent's own run directory is the store's run directory or its agent/ subdirectory.
        candidates = [(base / run.telemetry).resolve() for base in (directory, directory / AGENT_DIR)]
        if any(directory.resolve() not in c.parents for c in candidates):
            raise BadInput(
                f"{result_path}: telemetry: expected a path inside the run directory, got {run.telemetry!r}"
            )
        tel_path = next((c for c in candidates if c.is_file()), None)
        tel = read_telemetry(tel_path, sums) if tel_path else None
        if tel is not None and tel.start_s is not None and tel.start_s < RELATIVE_BEFORE_S:
            tel.shift(run.started_at)  # the agent writes seconds since the run started
    log_path = directory / EVENT_LOG_FILE
    log = read_json(log_path) if log_path.is_file() else None
    if log is not None and not isinstance(log, dict):
        raise BadInput(f"{log_path}: expected an event-log object, got {type(log).__name__}")
    after_path = directory / AFTER_FILE
    after = parse_inventory(read_json(after_path), str(after_path)) if after_path.is_file() else None
    power, tel = read_power(directory / POWER_FILE, tel)
    return RunFiles(run, pre, in_os, tel, digest_dir(directory), directory, log, after, power)


def read_power(path: Path, tel: Telemetry | None) -> tuple[PowerLog | None, Telemetry | None]:
    """The controller's power samples, and the telemetry with their series merged in for the plots
    (and for `peak_power`, which prefers the BMC's chassis reading, node.power_w, to an estimate)."""
    if not path.is_file():
        return None, tel
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    series = parse_telemetry(text, ())
    if tel is None:
        return parse_power_log(text), series
    merge_series(tel, series)
    return parse_power_log(text), tel


def golden_path(profiles_dir: Path, profile: str) -> Path:
    return profiles_dir / GOLDEN_DIR / f"{profile}.json"


def read_golden(profiles_dir: Path, profile: str) -> Golden | None:
    path = golden_path(profiles_dir, profile)
    if not path.is_file():
        return None
    golden = golden_from_dict(read_json(path), str(path))
    if golden.profile != profile:
        raise BadInput(f"{path}: profile: expected {profile!r}, got {golden.profile!r}")
    return golden


def write_golden(profiles_dir: Path, golden: Golden) -> Path:
    path = golden_path(profiles_dir, golden.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(golden.to_dict(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
