"""The GPU suite's copy measurements held to the profile's `gpu_floors` (provision.model.gpu_floors),
on the controller's side: every GPU reported host<->GPU copy figures with no byte changed, and the peer
matrix is what the profile says (`p2p`), each peer copy above `peer_min_gbs`. The agent judges the
same figures with the plan it was given; this holds the run to the profile whatever plan ran, and
fails closed: a GPU without figures is inconclusive. Rates against their floors and the golden host
are the profile's `acceptance.floors` (validation/suites.py); the all-reduce's figures are judged in
gpu_nccl.py. Pure.
"""

from __future__ import annotations

from typing import Any

from burnin.schema import Finding, SuiteResult, Verdict
from provision.acceptance.validation.common import finding
from provision.acceptance.validation.gpu_nccl import check_gpu_nccl
from provision.model.profile import Profile

EVIDENCE = ["gpu.copies"]


def check_gpu_links(profile: Profile, suites: list[SuiteResult]) -> list[Finding]:
    floors, gpus = profile.gpu_floors, profile.gpus
    suite = next((s for s in suites if s.suite == "gpu"), None)
    if floors is None or gpus is None or suite is None:  # no suite: suite_completed says so
        return []
    copies = suite.measurements.get("copies")
    copies = copies if isinstance(copies, dict) else {}
    hosts = {h.get("index"): h for h in _rows(copies.get("hosts"))}
    out = [_host(i, hosts.get(i)) for i in range(gpus.count)] + check_gpu_nccl(profile, suite)
    if floors.p2p is None or gpus.count < 2:
        return out
    peers = {(p.get("src"), p.get("dst")): p for p in _rows(copies.get("peers"))}
    for a in range(gpus.count):
        for b in range(gpus.count):
            if a != b:
                out += _pair(f"gpu:{a}->gpu:{b}", peers.get((a, b)), floors.p2p.value, floors.peer_min_gbs)
    return out


def _rows(value: Any) -> list[dict[str, Any]]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _host(i: int, h: dict[str, Any] | None) -> Finding:
    comp, want = f"gpu:{i}", "H2D and D2H figures, 0 bytes changed"
    if h is None or h.get("h2d_gbs") is None or h.get("d2h_gbs") is None:
        why = (h or {}).get("error") or "no copy figures reported"
        return finding(
            "gpu_copies_reported", comp, want, why, Verdict.INCONCLUSIVE, source="burnin", evidence=EVIDENCE
        )
    bad = h.get("mismatched_bytes")
    seen = (
        f"H2D {h['h2d_gbs']} GB/s, D2H {h['d2h_gbs']} GB/s over Gen{h.get('link_gen')} x{h.get('link_width')}"
    )
    seen += f", NUMA node {h.get('numa_node')}, {bad} bytes changed"
    verdict = Verdict.INCONCLUSIVE if not isinstance(bad, int) else Verdict.FAIL if bad else Verdict.PASS
    return finding("gpu_copies_reported", comp, want, seen, verdict, source="burnin", evidence=EVIDENCE)


def _pair(comp: str, p: dict[str, Any] | None, want: str, floor: float | None) -> list[Finding]:
    if p is None or p.get("can_access") is None:
        why = (p or {}).get("error") or "pair not reported"
        return [
            finding(
                "gpu_p2p_matrix",
                comp,
                f"peer access {want}",
                why,
                Verdict.INCONCLUSIVE,
                source="burnin",
                evidence=EVIDENCE,
            )
        ]
    seen = "expected" if p["can_access"] else "absent"
    bad = p.get("mismatched_bytes")
    ok = seen == want and bad == 0
    observed = f"peer access {seen}, {bad} bytes changed ({p.get('via')})"
    out = [
        finding(
            "gpu_p2p_matrix",
            comp,
            f"peer access {want}, 0 bytes changed",
            observed,
            Verdict.PASS if ok else Verdict.FAIL,
            source="burnin",
            evidence=EVIDENCE,
        )
    ]
    if floor is not None and p.get("via") == "peer":
        gbs = p.get("gbs")
        verdict = (
            Verdict.INCONCLUSIVE
            if not isinstance(gbs, (int, float))
            else Verdict.PASS
            if gbs >= floor
            else Verdict.FAIL
        )
        out.append(
            finding(
                "gpu_p2p_floor",
                comp,
                f">= {floor:g} GB/s",
                f"{gbs} GB/s",
                verdict,
                source="burnin",
                evidence=EVIDENCE,
            )
        )
    return out
