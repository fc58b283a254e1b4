"""The burn-in's time series: parsed from the agent's JSON-lines file in one streaming pass into
time buckets (min, max, sum, count per series), summarized for validation, and re-bucketed into
min/max envelopes for plots.

Pure (the caller opens the file). One line is either a sample or a phase marker:
    {"t": 1732790001.0, "v": {"gpu0.temp_c": 61.0, "cpu0.power_w": 351.2}}
    {"t": 1732790000.0, "phase": "gpu"}            (also accepted: "event": "phase", "name": ...)
A sample may also carry its values at the top level ({"t": ..., "gpu0.temp_c": ...}) or under
"values"/"samples". Unparsable lines are counted, not fatal: a truncated last line is normal when an
agent is killed mid-write.

Memory and plot size are bounded whatever the run's length: buckets start one second wide and
double (merging pairs) whenever there are more than MAX_BUCKETS, so a 72-hour 1 Hz run keeps a few
thousand buckets per series. Extremes are never averaged away: each bucket keeps its min and max,
and sums of series (peak power of all parts) are taken per sample, before bucketing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatch

MAX_BUCKETS = 4096
_TIME_KEYS = ("t", "ts", "time")
_NESTED_KEYS = ("v", "values", "samples")
DEFAULT_SUMS: tuple[tuple[str, ...], ...] = (("cpu*.power_w", "gpu*.power_w", "power.package-*_w"),)

Bucket = list[float]  # [min, max, sum, count]


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
    samples: int = 0
    start_s: float | None = None
    end_s: float | None = None
    width_s: float = 1.0  # current bucket width
    series: dict[str, dict[int, Bucket]] = field(default_factory=dict)
    sums: dict[tuple[str, ...], dict[int, Bucket]] = field(default_factory=dict)
    sum_members: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    phase_marks: list[tuple[float, str]] = field(default_factory=list)
    bad_lines: int = 0

    def shift(self, offset_s: float) -> None:
        """Move the series in time: the agent writes seconds since the run started."""
        if self.start_s is not None:
            self.start_s += offset_s
        if self.end_s is not None:
            self.end_s += offset_s
        self.phase_marks = [(t + offset_s, name) for t, name in self.phase_marks]

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
        buckets = self.series.get(name)
        if not buckets:
            return None
        count = sum(b[3] for b in buckets.values())
        total = sum(b[2] for b in buckets.values())
        return SeriesStats(
            name,
            int(count),
            min(b[0] for b in buckets.values()),
            max(b[1] for b in buckets.values()),
            total / count,
        )

    def peak_of_sum(self, patterns: Iterable[str]) -> tuple[float, list[str]] | None:
        """The highest instantaneous sum of every series matching `patterns`, when the parser was
        asked to add them up (parse_telemetry's `sums`); None when it was not or nothing matched."""
        key = tuple(patterns)
        buckets = self.sums.get(key)
        if not buckets:
            return None
        return max(b[1] for b in buckets.values()), sorted(self.sum_members.get(key, ()))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    as_float = float(value)
    return None if math.isnan(as_float) else as_float


def _merge(into: dict[int, Bucket], index: int, lo: float, hi: float, total: float, count: float) -> None:
    b = into.get(index)
    if b is None:
        into[index] = [lo, hi, total, count]
        return
    if lo < b[0]:
        b[0] = lo
    if hi > b[1]:
        b[1] = hi
    b[2] += total
    b[3] += count


_NUMERIC = (float, int)  # bool is its own class: `True.__class__ in _NUMERIC` is False


class _Parser:
    """Buffers the samples of the current bucket as the dicts json.loads made, and reduces them a
    column at a time when the bucket closes: per-value Python work is what makes a 72-hour file slow."""

    def __init__(self, sums: Iterable[tuple[str, ...]]) -> None:
        self.tel = Telemetry()
        self.sum_keys = list(dict.fromkeys(tuple(s) for s in sums))
        self.groups_of: dict[str, list[int]] = {}  # series name -> indexes of the sums it belongs to
        self.current: int | None = None
        self.rows: list[dict[str, object]] = []

    def _groups(self, name: str) -> list[int]:
        groups = self.groups_of.get(name)
        if groups is None:
            groups = [i for i, pats in enumerate(self.sum_keys) if any(fnmatch(name, p) for p in pats)]
            self.groups_of[name] = groups
            for i in groups:
                self.tel.sum_members.setdefault(self.sum_keys[i], set()).add(name)
        return groups

    def _flush(self) -> None:
        rows, b, tel = self.rows, self.current, self.tel
        if b is None or not rows:
            return
        names = set().union(*rows)
        members: dict[int, list[str]] = {}
        for name in names:
            values = [x for row in rows if (x := row.get(name)).__class__ in _NUMERIC and x == x]
            if values:
                _merge(tel.series.setdefault(name, {}), b, min(values), max(values), sum(values), len(values))
                for i in self._groups(name):
                    members.setdefault(i, []).append(name)
        for i, group in members.items():
            totals = []
            for row in rows:
                total, seen = 0.0, False
                for name in group:
                    x = row.get(name)
                    if x.__class__ in _NUMERIC and x == x:
                        total += x
                        seen = True
                if seen:
                    totals.append(total)
            if totals:
                _merge(
                    tel.sums.setdefault(self.sum_keys[i], {}),
                    b,
                    min(totals),
                    max(totals),
                    sum(totals),
                    len(totals),
                )
        self.rows = []
        if max((len(s) for s in (*tel.series.values(), *tel.sums.values())), default=0) > MAX_BUCKETS:
            self._coarsen()

    def _coarsen(self) -> None:
        tel = self.tel
        tel.width_s *= 2
        for store in (*tel.series.values(), *tel.sums.values()):
            merged: dict[int, Bucket] = {}
            for index, (lo, hi, total, count) in store.items():
                _merge(merged, index // 2, lo, hi, total, count)
            store.clear()
            store.update(merged)

    def sample(self, t: float, values: dict[str, object]) -> None:
        tel = self.tel
        if tel.start_s is None:
            tel.start_s = t
        if tel.end_s is None or t > tel.end_s:
            tel.end_s = t
        tel.samples += 1
        index = math.floor((t - tel.start_s) / tel.width_s)
        if index != self.current:
            self._flush()
            index = math.floor((t - tel.start_s) / tel.width_s)  # the width may just have doubled
            self.current = index
        self.rows.append(values)

    def line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            self.tel.bad_lines += 1
            return
        if not isinstance(obj, dict):
            self.tel.bad_lines += 1
            return
        t = next((_number(obj[k]) for k in _TIME_KEYS if k in obj), None)
        if t is None:
            self.tel.bad_lines += 1
            return
        phase = obj.get("phase")
        if phase is None and obj.get("event") == "phase":
            phase = obj.get("name")
        if isinstance(phase, str):
            self.tel.phase_marks.append((t, phase))
            return
        nested = next((obj[k] for k in _NESTED_KEYS if isinstance(obj.get(k), dict)), None)
        self.sample(
            t, nested if nested is not None else {k: v for k, v in obj.items() if k not in _TIME_KEYS}
        )


def merge_series(into: Telemetry, other: Telemetry) -> None:
    """Add `other`'s series (both in epoch seconds) into `into`'s buckets: the controller's own
    samples (the PDU and BMC power of provision.pdu.sampler) plotted and judged beside the agent's."""
    if other.start_s is None:
        return
    if into.start_s is None:
        into.start_s, into.end_s, into.width_s = other.start_s, other.end_s, other.width_s
    start = into.start_s
    for name, store in other.series.items():
        target = into.series.setdefault(name, {})
        for index, (lo, hi, total, count) in store.items():
            center = other.start_s + (index + 0.5) * other.width_s
            _merge(target, math.floor((center - start) / into.width_s), lo, hi, total, count)
    into.samples += other.samples
    if other.end_s is not None and (into.end_s is None or other.end_s > into.end_s):
        into.end_s = other.end_s


def parse_telemetry(lines: Iterable[str], sums: Iterable[tuple[str, ...]] = DEFAULT_SUMS) -> Telemetry:
    """`sums`: groups of series patterns whose per-sample total is kept (e.g. all part power)."""
    parser = _Parser(sums)
    for line in lines:
        parser.line(line)
    parser._flush()
    return parser.tel


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
    store = tel.series.get(name, {})
    start, end = tel.start_s, tel.end_s
    if start is None or end is None or not store:
        return Envelope(name, [], [], [], [])
    width = max((end - start) / buckets, 1e-9)
    out: dict[int, Bucket] = {}
    for index, (lo, hi, total, count) in store.items():
        center = start + (index + 0.5) * tel.width_s
        _merge(out, min(max(int((center - start) / width), 0), buckets - 1), lo, hi, total, count)
    keys = sorted(out)
    return Envelope(
        name,
        [start + (k + 0.5) * width for k in keys],
        [out[k][0] for k in keys],
        [out[k][2] / out[k][3] for k in keys],
        [out[k][1] for k in keys],
    )


_THROUGHPUT_UNITS = {"mbs": "MB/s", "gbs": "GB/s", "iops": "IOPS", "bps": "B/s", "tflops": "TFLOPS"}


def kind_of(name: str) -> tuple[str, str] | None:
    """Which plot a series belongs to, from the unit its name carries (house rule: units in names):
    the agent's `temp.<chip>.<label>` (°C), `cpu.mhz_avg`, `power.<zone>_w`, and `<part>.<what>_c|_w|_mhz`."""
    if name.startswith("temp.") or name.endswith("_c"):
        return "temperatures", "°C"
    if name.endswith("_mhz") or ".mhz" in name:
        return "clocks", "MHz"
    if name.endswith("_w"):
        return "power", "W"
    suffix = name.rsplit("_", 1)[-1]
    if suffix in _THROUGHPUT_UNITS:
        return "throughput", _THROUGHPUT_UNITS[suffix]
    if suffix == "pct":  # cpu.busy_pct, gpu0.util_gpu_pct: how hard each part was driven
        return "utilization", "%"
    return None
