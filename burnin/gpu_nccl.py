"""NCCL all-reduce over every GPU of the node (nccl-tests' `all_reduce_perf`): its output parsed and
judged. Pure (text in, facts out).

all_reduce_perf prints one row per message size, out-of-place then in-place, each with time, algbw,
busbw and `#wrong` (values that differ from the expected reduction; N/A when validation is off):

    #       size         count      type   redop    root     time   algbw   busbw #wrong     time ...
      4294967296    1073741824     float     sum      -1    81234   52.87   79.31      0    81102 ...
    # Out of bounds values : 0 OK
    # Avg bus bandwidth    : 31.4067

Verdict: any wrong value (a row's #wrong > 0, or "Out of bounds values : N FAILED") fails; the bus
bandwidth at the largest message below the floor fails; output without the closing "Avg bus bandwidth"
(crashed, killed, truncated), without rows, or with validation off is inconclusive.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from burnin.schema import Verdict

_NUM = r"(\d+(?:\.\d+)?|N/A)"
_ROW = re.compile(
    r"^\s*(?P<size>\d+)\s+(?P<count>\d+)\s+(?P<type>\w+)\s+(?P<redop>\w+)\s+(?P<root>-?\d+)"
    rf"\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}\s*$",
    re.M,
)
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(\d+(?:\.\d+)?)", re.M)
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s+(OK|FAILED)", re.M)
_GPUS = re.compile(r"^#\s+Rank\s+\d+\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+\S+\s+device\s+\d+", re.M)


@dataclass
class NcclRow:
    size: int
    busbw_out: Optional[float]
    busbw_in: Optional[float]
    wrong_out: Optional[int]  # None: N/A (validation off)
    wrong_in: Optional[int]


@dataclass
class NcclReport:
    rows: List[NcclRow] = field(default_factory=list)
    avg_busbw: Optional[float] = None
    out_of_bounds: Optional[int] = None
    ranks: int = 0  # devices listed under "Using devices"

    @property
    def wrong(self) -> int:
        return sum((r.wrong_out or 0) + (r.wrong_in or 0) for r in self.rows) + (self.out_of_bounds or 0)

    @property
    def peak_busbw(self) -> Optional[float]:
        """Bus bandwidth at the largest message (the better of out-of-place and in-place)."""
        if not self.rows:
            return None
        last = max(self.rows, key=lambda r: r.size)
        seen = [v for v in (last.busbw_out, last.busbw_in) if v is not None]
        return max(seen) if seen else None

    def verdict(self, floor_gbs: Optional[float], gpus: Optional[int]) -> Tuple[Verdict, str]:
        peak = self.peak_busbw
        figures = (
            f"busbw {peak} GB/s at {max((r.size for r in self.rows), default=0)} B, avg {self.avg_busbw} GB/s"
        )
        if self.wrong:
            return Verdict.FAIL, f"{self.wrong} wrong values ({figures})"
        if not self.rows or self.avg_busbw is None:
            return (
                Verdict.INCONCLUSIVE,
                f"all_reduce_perf output incomplete ({len(self.rows)} rows, no average)",
            )
        if any(r.wrong_out is None or r.wrong_in is None for r in self.rows):
            return Verdict.INCONCLUSIVE, "all_reduce_perf ran without validation (#wrong N/A)"
        if gpus is not None and not self.ranks:  # which GPUs took part is unknown: not a pass
            return Verdict.INCONCLUSIVE, f"all_reduce_perf listed no devices ({figures}), expected {gpus}"
        if gpus is not None and self.ranks != gpus:
            return Verdict.FAIL, f"all_reduce_perf used {self.ranks} GPUs, expected {gpus}"
        if floor_gbs is None:
            return Verdict.PASS, f"0 wrong values, {figures}; no busbw floor in the profile"
        if peak is None or peak < floor_gbs:
            return Verdict.FAIL, f"0 wrong values, {figures}: below the floor"
        return Verdict.PASS, f"0 wrong values, {figures}"


def _num(text: str) -> Optional[float]:
    return None if text == "N/A" else float(text)


def _int(text: str) -> Optional[int]:
    return None if text == "N/A" else int(float(text))


def parse_all_reduce(text: str) -> NcclReport:
    report = NcclReport(ranks=len(_GPUS.findall(text)))
    for m in _ROW.finditer(text):
        g = m.groups()
        # size count type redop root | time algbw busbw #wrong out-of-place | the same in-place
        report.rows.append(NcclRow(int(g[0]), _num(g[7]), _num(g[11]), _int(g[8]), _int(g[12])))
    avg = _AVG.search(text)
    report.avg_busbw = float(avg.group(1)) if avg else None
    oob = _OOB.search(text)
    if oob:
        report.out_of_bounds = int(oob.group(1))
    return report


def argv(gpus: int) -> List[str]:
    return ["all_reduce_perf", "-b", "8", "-e", "4G", "-f", "2", "-g", str(gpus)]
