"""The burn-in's time series: parsed from the agent's JSON-lines file, summarized for validation,
and downsampled with min/max envelopes for plots.

Pure (the caller opens the file). One line is either a sample or a phase marker:
    {"t": 1732790001.0, "v": {"gpu0.temp_c": 61.0, "cpu0.power_w": 351.2}}
    {"t": 1732790000.0, "phase": "gpu"}            (also accepted: "event": "phase", "name": ...)
A sample may also carry its values at the top level ({"t": ..., "gpu0.temp_c": ...}) or under
"values"/"samples". Unparsable lines are counted, not fatal: a truncated last line is normal when an
agent is killed mid-write.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatch

NAN = float("nan")
_TIME_KEYS = ("t", "ts", "time")
_NESTED_KEYS = ("v", "values", "samples")


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float  # epoch seconds
    end_s: float


@dataclass(frozen=True)
class SeriesStats:
    name: str
    count: int
    min: float
    max: float
    mean: float


@dataclass
class Telemetry:
    times: array[float] = field(default_factory=lambda: array("d"))
    series: dict[str, array[float]] = field(default_factory=dict)  # aligned with times, NaN = no sample
    phase_marks: list[tuple[float, str]] = field(default_factory=list)
    bad_lines: int = 0

    @property
    def start_s(self) -> float | None:
        return self.times[0] if self.times else None

    @property
    def end_s(self) -> float | None:
        return self.times[-1] if self.times else None

    def phases(self, end_s: float | None = None) -> list[Phase]:
        marks = sorted(self.phase_marks)
        stop = end_s if end_s is not None else (self.end_s or (marks[-1][0] if marks else 0.0))
        out = []
        for i, (t, name) in enumerate(marks):
            nxt = marks[i + 1][0] if i + 1 < len(marks) else stop
            out.append(Phase(name, t, max(t, nxt)))
        return out

    def matching(self, pattern: str) -> list[str]:
        return sorted(n for n in self.series if fnmatch(n, pattern))

    def stats(self, name: str) -> SeriesStats | None:
        values = [v for v in self.series.get(name, ()) if not math.isnan(v)]
        if not values:
            return None
        return SeriesStats(name, len(values), min(values), max(values), sum(values) / len(values))

    def peak_of_sum(self, patterns: Iterable[str]) -> tuple[float, list[str]] | None:
        """The highest instantaneous sum of every series matching `patterns` (e.g. all power_w)."""
        names = sorted({n for p in patterns for n in self.matching(p)})
        if not names:
            return None
        peak = NAN
        columns = [self.series[n] for n in names]
        for i in range(len(self.times)):
            total, seen = 0.0, False
            for col in columns:
                v = col[i]
                if not math.isnan(v):
                    total += v
                    seen = True
            if seen and (math.isnan(peak) or total > peak):
                peak = total
        return None if math.isnan(peak) else (peak, names)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_telemetry(lines: Iterable[str]) -> Telemetry:
    tel = Telemetry()
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            tel.bad_lines += 1
            continue
        if not isinstance(obj, dict):
            tel.bad_lines += 1
            continue
        t = next((_number(obj[k]) for k in _TIME_KEYS if k in obj), None)
        if t is None:
            tel.bad_lines += 1
            continue
        phase = obj.get("phase")
        if phase is None and obj.get("event") == "phase":
            phase = obj.get("name")
        if isinstance(phase, str):
            tel.phase_marks.append((t, phase))
            continue
        nested = next((obj[k] for k in _NESTED_KEYS if isinstance(obj.get(k), dict)), None)
        values = nested if nested is not None else {k: v for k, v in obj.items() if k not in _TIME_KEYS}
        n = len(tel.times)
        tel.times.append(t)
        for name, raw in values.items():
            v = _number(raw)
            col = tel.series.get(name)
            if col is None:
                col = tel.series[name] = array("d", [NAN]) * n
            col.append(NAN if v is None else v)
        for col in tel.series.values():
            if len(col) == n:
                col.append(NAN)
    return tel


@dataclass(frozen=True)
class Envelope:
    """One series reduced to at most `buckets` points: per bucket its time, min, mean and max."""

    name: str
    t: list[float]
    lo: list[float]
    mean: list[float]
    hi: list[float]


def downsample(tel: Telemetry, name: str, buckets: int) -> Envelope:
    """Min/max envelope: spikes survive any reduction, which a plain average would hide."""
    col = tel.series[name]
    start, end = tel.start_s, tel.end_s
    t_out: list[float] = []
    lo: list[float] = []
    mean: list[float] = []
    hi: list[float] = []
    if start is None or end is None:
        return Envelope(name, t_out, lo, mean, hi)
    width = max((end - start) / buckets, 1e-9)
    sums = [0.0] * buckets
    counts = [0] * buckets
    mins = [math.inf] * buckets
    maxs = [-math.inf] * buckets
    times = tel.times
    for i in range(len(times)):
        v = col[i]
        if v != v:  # NaN: no sample at this tick
            continue
        b = min(int((times[i] - start) / width), buckets - 1)
        sums[b] += v
        counts[b] += 1
        if v < mins[b]:
            mins[b] = v
        if v > maxs[b]:
            maxs[b] = v
    for b in range(buckets):
        if counts[b]:
            t_out.append(start + (b + 0.5) * width)
            lo.append(mins[b])
            hi.append(maxs[b])
            mean.append(sums[b] / counts[b])
    return Envelope(name, t_out, lo, mean, hi)


_KINDS = (
    ("temperatures", "°C", ("temp_c", "_c")),
    ("clocks", "MHz", ("_mhz",)),
    ("power", "W", ("power_w", "_w")),
    ("throughput", "MB/s", ("_mbs", "_gbs", "_iops", "_bps", "_tflops")),
)


_THROUGHPUT_UNITS = {"mbs": "MB/s", "gbs": "GB/s", "iops": "IOPS", "bps": "B/s", "tflops": "TFLOPS"}


def kind_of(name: str) -> tuple[str, str] | None:
    """Which plot a series belongs to, from the unit its name carries (house rule: units in names)."""
    for kind, unit, suffixes in _KINDS:
        if any(name.endswith(s) for s in suffixes):
            if kind == "throughput":
                suffix = name.rsplit("_", 1)[-1]
                unit = _THROUGHPUT_UNITS.get(suffix, suffix)
            return kind, unit
    return None
