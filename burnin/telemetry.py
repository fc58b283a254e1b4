"""Adapter: one sampler thread for the whole run. Each tick it reads CPU clocks, hwmon temperatures
(k10temp/coretemp/nvme), RAPL package power where exposed, CPU busy share and EDAC counters, plus
whatever the suites registered, and appends one compact JSON line to telemetry.jsonl:

    {"t": 12.0, "v": {"cpu.mhz_avg": 3712.5, "temp.k10temp.Tctl": 61.2, ...}}
    {"t": 12.0, "v": {"temp.k10temp-0.Tctl": 61.2, "temp.k10temp-1.Tctl": 58.9, ...}}  (two sockets)
    {"t": 12.4, "phase": "cpu"}

`t` is seconds since the run started. Sources that are absent are simply not in `v`.
"""

from __future__ import annotations

import glob
import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from burnin.hostio import PROC, SYS, read

Sampler = Callable[[], Dict[str, float]]


def cpu_clocks() -> Dict[str, float]:
    khz = []
    for f in glob.glob(str(SYS / "devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq")):
        v = read(Path(f))
        if v and v.isdigit():
            khz.append(int(v) / 1000)
    if not khz:  # no cpufreq driver (VMs): /proc/cpuinfo still reports a clock
        text = read(PROC / "cpuinfo") or ""
        khz = [float(ln.split(":")[1]) for ln in text.splitlines() if ln.startswith("cpu MHz")]
    if not khz:
        return {}
    return {"cpu.mhz_avg": round(sum(khz) / len(khz), 1), "cpu.mhz_min": min(khz), "cpu.mhz_max": max(khz)}


def hwmon_devices() -> List[Tuple[str, Path]]:
    """(series name, hwmon directory) of every hwmon device, each name unique.

    A driver bound to several devices (k10temp or coretemp once per CPU socket) gets the device's
    ordinal among them, in the order of their device paths (PCI 0000:00:18.3 before 0000:00:19.3,
    coretemp.0 before coretemp.1): k10temp-0, k10temp-1. A driver seen once keeps its plain name.
    hwmonN numbers are not used: they follow probe order, which can change between boots.
    """
    found: List[Tuple[str, str, Path]] = []
    for hw in glob.glob(str(SYS / "class/hwmon/hwmon*")):
        base = Path(hw)
        name = read(base / "name") or base.name
        device = os.path.realpath(base / "device") if (base / "device").exists() else str(base)
        if name == "nvme":  # name the drive, not the driver: nvme0
            dev = os.path.basename(device)
            name = dev if dev.startswith("nvme") else name + "." + base.name
        found.append((name, device, base))
    found.sort(key=lambda f: (f[0], f[1], f[2].name))
    out: List[Tuple[str, Path]] = []
    for name, _, base in found:
        same = [f for f in found if f[0] == name]
        if len(same) > 1:
            name = f"{name}-{[f[2] for f in same].index(base)}"
        out.append((name, base))
    return sorted(out, key=lambda f: f[1].name)


def hwmon_temps() -> Dict[str, float]:
    out: Dict[str, float] = {}
    for name, base in hwmon_devices():
        for inp in sorted(base.glob("temp*_input")):
            raw = read(inp)
            if raw is None or not raw.lstrip("-").isdigit():
                continue
            label = read(base / inp.name.replace("_input", "_label")) or inp.name.split("_")[0]
            out[f"temp.{name}.{label}"] = int(raw) / 1000
    return out


class _Rapl:
    """Package power from RAPL energy counters (microjoules), as a rate between ticks."""

    def __init__(self) -> None:
        self.last: Dict[str, Tuple[float, int]] = {}

    def __call__(self) -> Dict[str, float]:
        out: Dict[str, float] = {}
        now = time.monotonic()
        for zone in glob.glob(str(SYS / "class/powercap/*rapl:[0-9]")):
            base = Path(zone)
            raw = read(base / "energy_uj")
            if raw is None or not raw.isdigit():
                continue
            name = read(base / "name") or base.name
            energy = int(raw)
            prev = self.last.get(zone)
            self.last[zone] = (now, energy)
            if prev is None or now <= prev[0]:
                continue
            delta = energy - prev[1]
            if delta < 0:  # the counter wrapped
                delta += int(read(base / "max_energy_range_uj") or 0)
            out[f"power.{name}.{base.name}_w"] = round(delta / 1e6 / (now - prev[0]), 1)
        return out


class _CpuBusy:
    """Share of all CPUs busy between ticks, from /proc/stat (idle and iowait count as not busy)."""

    def __init__(self) -> None:
        self.last: Optional[Tuple[int, int]] = None

    def __call__(self) -> Dict[str, float]:
        line = (read(PROC / "stat") or "").splitlines()[:1]
        if not line:
            return {}
        vals = [int(x) for x in line[0].split()[1:]]
        total, idle = sum(vals[:8]), vals[3] + vals[4]
        prev, self.last = self.last, (total, idle)
        if prev is None or total <= prev[0]:
            return {}
        return {"cpu.busy_pct": round(100.0 * (1 - (idle - prev[1]) / (total - prev[0])), 1)}


def edac_counts() -> Dict[str, float]:
    ce = ue = 0
    mcs = glob.glob(str(SYS / "devices/system/edac/mc/mc[0-9]*"))
    if not mcs:
        return {}
    for mc in mcs:
        ce += int(read(Path(mc) / "ce_count") or 0)
        ue += int(read(Path(mc) / "ue_count") or 0)
    return {"edac.ce_total": ce, "edac.ue_total": ue}


class Telemetry:
    def __init__(self, path: Path, interval_s: float, log: Callable[..., None]) -> None:
        self.path = path
        self.interval_s = max(0.1, float(interval_s))
        self.log = log
        self.t0 = time.time()
        self._samplers: Dict[str, Sampler] = {
            "clocks": cpu_clocks,
            "hwmon": hwmon_temps,
            "rapl": _Rapl(),
            "busy": _CpuBusy(),
            "edac": edac_counts,
        }
        self._samples: List[Tuple[float, str, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self._fh = open(path, "a")  # noqa: SIM115 - open for the whole run, closed by stop()

    def add_sampler(self, name: str, sampler: Sampler) -> None:
        with self._lock:
            self._samplers[name] = sampler

    def mark_phase(self, phase: str) -> None:
        self._write({"t": self._now(), "phase": phase})

    def samples(self, prefix: str, since: float = 0.0) -> List[Tuple[float, float]]:
        """(t, value) of every series starting with `prefix`, sampled at or after epoch `since`."""
        since_t = since - self.t0
        with self._lock:
            return [(t, v) for t, n, v in self._samples if n.startswith(prefix) and t >= since_t]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.tick()  # a final sample, so short phases still have one after their end
        self._fh.close()

    def _now(self) -> float:
        return round(time.time() - self.t0, 2)

    def _write(self, record: Dict[str, object]) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
                self._fh.flush()

    def tick(self) -> None:
        values: Dict[str, float] = {}
        with self._lock:
            samplers = list(self._samplers.items())
        for name, sampler in samplers:
            try:
                values.update(sampler())
            except Exception as exc:  # one broken source must not stop the others
                with self._lock:
                    self._samplers.pop(name, None)
                self.log("sampler_failed", sampler=name, error=repr(exc))
        t = self._now()
        with self._lock:
            self._samples.extend((t, k, float(v)) for k, v in values.items())
        self._write({"t": t, "v": values})

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()
