"""A 72-hour burn-in at 1 Hz for 4 GPUs + 2 CPU sockets + 4 NVMe drives, written as the agent writes
its telemetry: one JSON line per second, phase markers between. About 260,000 lines."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from tests.support.bundle import FIXTURES

HOURS = 72
PHASES = [("cpu", 0), ("memory", 14400), ("nvme", 28800), ("gpu", 36000), ("soak", 50400)]


def write_long_run(directory: Path, hours: int = HOURS) -> int:
    """A run directory with the fixture result re-timed to `hours` and its telemetry. Returns samples."""
    directory.mkdir(parents=True, exist_ok=True)
    result = json.loads((FIXTURES / "lust-result.json").read_text())
    t0 = result["started_at"]
    seconds = hours * 3600
    result["ended_at"] = t0 + seconds
    shutil.copy(FIXTURES / "lust-redfish-inventory.json", directory / "inventory-redfish.json")
    (directory / "result.json").write_text(json.dumps(result))
    with (directory / "telemetry.jsonl").open("w") as out:
        for name, at in PHASES:
            out.write(f'{{"t": {t0 + at}, "phase": "{name}"}}\n')
        for s in range(seconds + 1):
            wobble = math.sin(s / 600.0)
            cpu = f"{70 + 5 * wobble:.1f}"
            gpu = f"{75 + 6 * wobble:.1f}"
            spike = 9.0 if s % 7919 == 0 else 0.0  # rare spikes: the envelope must keep them
            out.write(
                f'{{"t": {t0 + s}, "v": {{"cpu0.temp_c": {cpu}, "cpu1.temp_c": {cpu}, '
                f'"cpu0.power_w": 380, "cpu1.power_w": 381, "cpu0.freq_mhz": 4010, '
                f'"gpu0.temp_c": {gpu}, "gpu1.temp_c": {gpu}, "gpu2.temp_c": {gpu}, '
                f'"gpu3.temp_c": {float(gpu) + spike:.1f}, '
                f'"gpu0.power_w": 298, "gpu1.power_w": 297, "gpu2.power_w": 299, "gpu3.power_w": 296, '
                f'"gpu0.sm_clock_mhz": 2280, "gpu1.sm_clock_mhz": 2270, "gpu2.sm_clock_mhz": 2275, '
                f'"gpu3.sm_clock_mhz": 2265, "nvme0.temp_c": 45, "nvme1.temp_c": 46, "nvme2.temp_c": 44, '
                f'"nvme3.temp_c": 45, "nvme0.read_mbs": 13900, "gpu0.util_gpu_pct": 100, '
                f'"node.power_w": 2650}}}}\n'
            )
    return seconds + 1
