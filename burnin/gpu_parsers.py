"""Parsers for the optional third-party GPU burners: gpu_burn's text and `dcgmi diag --json`.

Pure (text in, facts out). Neither tool's exit code is trusted: gpu_burn exits 0 with FAULTY GPUs and
prints OK after an init failure; DCGM skips tests for SKUs it does not know. So: skipped, unparsed or
"did no work" is INCONCLUSIVE, never PASS.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from burnin.schema import Verdict

_PROGRESS = re.compile(r"proc'd:\s*(?P<procd>.*?)\s+errors:\s*(?P<errors>.*?)\s+temps:")
_PROCD_ITEM = re.compile(r"(-?\d+)\s*\((\d+(?:\.\d+)?)\s*Gflop/s\)")
_ERROR_ITEM = re.compile(r"(-?\d+)\s*(\((?:WARNING|DIED)!\))?")
_STATUS = re.compile(r"^\s*GPU\s+(\d+):\s+(OK|FAULTY)\s*$", re.M)
_TESTED = re.compile(r"^Tested\s+(\d+)\s+GPUs:", re.M)


@dataclass
class GpuBurnGpu:
    index: int
    status: Optional[str] = None  # "OK" / "FAULTY" from the final table
    processed: Optional[int] = None  # last "proc'd" count
    gflops: Optional[float] = None
    errors: Optional[int] = None  # last error count (garbage when the client died)
    died: bool = False
    warned: bool = False


@dataclass
class GpuBurnReport:
    gpus: List[GpuBurnGpu] = field(default_factory=list)
    tested: Optional[int] = None
    init_failed: bool = False  # "Couldn't init a GPU test": its GPUs still print OK
    aborted: bool = False  # "No clients are alive!"
    problems: List[str] = field(default_factory=list)

    def verdict(self, expected_gpus: Optional[int] = None) -> Tuple[Verdict, str]:
        """`expected_gpus` (the profile's count): gpu_burn testing fewer or more GPUs fails."""
        if self.aborted or any(g.status == "FAULTY" or g.died for g in self.gpus):
            bad = ", ".join(str(g.index) for g in self.gpus if g.status == "FAULTY" or g.died)
            why = " (all clients died, aborted)" if self.aborted else ""
            return Verdict.FAIL, f"gpu_burn: faulty GPUs {bad or '?'}{why}"
        if any((g.errors or 0) != 0 for g in self.gpus):
            return Verdict.FAIL, "gpu_burn: compare errors on GPUs " + ", ".join(
                str(g.index) for g in self.gpus if (g.errors or 0) != 0
            )
        if self.init_failed:
            return Verdict.INCONCLUSIVE, "gpu_burn could not initialise a GPU test (it still prints OK)"
        if self.tested is None or not self.gpus:
            return Verdict.INCONCLUSIVE, "gpu_burn printed no final per-GPU table"
        if expected_gpus is not None and (self.tested != expected_gpus or len(self.gpus) != expected_gpus):
            return Verdict.FAIL, (
                f"gpu_burn tested {self.tested} GPUs ({len(self.gpus)} reported), expected {expected_gpus}"
            )
        if any(g.status != "OK" or not g.processed or g.processed <= 0 for g in self.gpus):
            return Verdict.INCONCLUSIVE, "gpu_burn did no work on some GPU (proc'd 0 or missing)"
        return Verdict.PASS, f"gpu_burn: {len(self.gpus)} GPUs OK, 0 errors"


def parse_gpu_burn(text: str) -> GpuBurnReport:
    report = GpuBurnReport()
    by_index: Dict[int, GpuBurnGpu] = {}

    def gpu(i: int) -> GpuBurnGpu:
        return by_index.setdefault(i, GpuBurnGpu(i))

    for line in text.splitlines():
        m = _PROGRESS.search(line)
        if not m:
            continue
        for i, item in enumerate(m.group("procd").split(" - ")):
            pm = _PROCD_ITEM.search(item)
            if pm:
                gpu(i).processed, gpu(i).gflops = int(pm.group(1)), float(pm.group(2))
        for i, item in enumerate(re.split(r"\s*-\s+(?=-?\d)", m.group("errors").strip())):
            em = _ERROR_ITEM.match(item.strip())
            if em:
                g = gpu(i)
                g.errors = int(em.group(1))
                g.died = g.died or em.group(2) == "(DIED!)"
                g.warned = g.warned or em.group(2) == "(WARNING!)"
    tested = _TESTED.search(text)
    if tested:
        report.tested = int(tested.group(1))
        for sm in _STATUS.finditer(text[tested.end() :]):
            gpu(int(sm.group(1))).status = sm.group(2)
    report.init_failed = "Couldn't init a GPU test" in text
    report.aborted = "No clients are alive" in text
    report.gpus = [by_index[i] for i in sorted(by_index)]
    return report


@dataclass
class DcgmTest:
    category: str
    name: str
    status: str  # "Pass", "Fail", "Warn", "Skip", "Not Run", ... as DCGM spells it
    gpu: Optional[str] = None
    warnings: List[str] = field(default_factory=list)


@dataclass
class DcgmReport:
    tests: List[DcgmTest] = field(default_factory=list)
    error: Optional[str] = None  # unparsable document or a runtime_error inside it

    def verdict(self) -> Tuple[Verdict, str]:
        # a Fail anywhere is fail, even beside a runtime_error (which would otherwise hide it)
        failed = sorted({f"{t.name} (gpu {t.gpu})" for t in self.tests if t.status.lower() == "fail"})
        if failed:
            extra = f" (and {self.error})" if self.error else ""
            return Verdict.FAIL, "dcgmi diag failed: " + ", ".join(failed) + extra
        if self.error:
            return Verdict.INCONCLUSIVE, f"dcgmi diag: {self.error}"
        if not self.tests:
            return Verdict.INCONCLUSIVE, "dcgmi diag reported no test results"
        ran = [t for t in self.tests if t.status.lower() in ("pass", "warn")]
        skipped = sorted({t.name for t in self.tests if t not in ran})
        if not ran:
            return Verdict.INCONCLUSIVE, "dcgmi diag ran nothing (all skipped: " + ", ".join(skipped) + ")"
        if skipped:
            return Verdict.INCONCLUSIVE, "dcgmi diag skipped " + ", ".join(skipped)
        if any(t.status.lower() == "warn" for t in ran):
            return Verdict.WARN, "dcgmi diag passed with warnings"
        return Verdict.PASS, f"dcgmi diag: {len(ran)} results pass"


def parse_dcgm_diag(text: str) -> DcgmReport:
    """`dcgmi diag -r N --json`: DCGM 3.x ("DCGM GPU Diagnostic", results[].gpu_id) and 4.x
    ("DCGM Diagnostic", results[].entity_id, test_summary)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return DcgmReport(error=f"output is not JSON ({exc})")
    root: Any = None
    if isinstance(doc, dict):
        root = doc.get("DCGM Diagnostic", doc.get("DCGM GPU Diagnostic"))
    if not isinstance(root, dict):
        return DcgmReport(error="no 'DCGM Diagnostic' object in the output")
    report = DcgmReport()
    if root.get("runtime_error"):
        report.error = f"runtime error: {root['runtime_error']}"
    for cat in root.get("test_categories") or []:
        for test in cat.get("tests") or []:
            results = test.get("results") or []
            if not results and isinstance(test.get("test_summary"), dict):
                results = [test["test_summary"]]
            for r in results:
                gpu = r.get("entity_id", r.get("gpu_id"))
                warnings = [str(w.get("warning", w)) for w in r.get("warnings") or [] if isinstance(w, dict)]
                report.tests.append(
                    DcgmTest(
                        category=str(cat.get("category", "")),
                        name=str(test.get("name", "?")),
                        status=str(r.get("status", "")),
                        gpu=None if gpu is None else str(gpu),
                        warnings=warnings,
                    )
                )
    return report
