"""Verdicts of the copy measurements (burnin.gpu_copy): host<->GPU bandwidth against the PCIe link it
ran over, GPUs against each other, every copied byte, and the peer matrix against the profile. Pure.

Keys read from plan["expect"]["gpus"] (a suite option of the same name wins):
  pcie_floor_pct (float, default 75: of the link's theoretical rate at its trained generation and
  width, per direction), pcie_spread_pct (float, default 10: each GPU's H2D / D2H within this % of the
  node median), p2p ("expected" | "absent"; unset: the matrix is reported, not judged),
  peer_min_gbs (float: floor of each peer copy; unset: reported, not judged).

Checks: gpu_copy_h2d, gpu_copy_d2h, gpu_copy_both (both directions at once: at least one direction's
floor), gpu_copy_spread, gpu_copy_data (bytes that came back changed), gpu_p2p_access, gpu_p2p_bandwidth,
gpu_p2p_data. A copy that could not run is inconclusive, never a pass.

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, List, Optional

from burnin.gpu_copy import HostCopy, PeerCopy, pcie_theoretical_gbs
from burnin.schema import Finding, Verdict, make_finding

EVIDENCE = "gpu.copies"


def _f(
    check: str, comp: str, expected: str, observed: str, verdict: Verdict, required: bool = True
) -> Finding:
    return make_finding(check, comp, expected, observed, verdict, "burnin", [EVIDENCE], required)


def _gbs(v: Optional[float]) -> str:
    return "not measured" if v is None else f"{v / 1e9:.1f} GB/s"


def host_findings(hosts: Dict[int, HostCopy], exp: Dict[str, Any]) -> List[Finding]:
    """`hosts` by NVML index."""
    floor_pct = float(exp.get("pcie_floor_pct", 75))
    spread = float(exp.get("pcie_spread_pct", 10))
    out: List[Finding] = []
    for n, h in sorted(hosts.items()):
        c = f"gpu:{n}"
        peak = pcie_theoretical_gbs(h.link_gen, h.link_width)
        link = f"Gen{h.link_gen} x{h.link_width}" if peak else "an unknown link"
        where = f"; CPUs {h.cpus} (NUMA {h.numa_node})" if h.pinned else "; not pinned (no NUMA information)"
        for rate, check in (
            (h.h2d_bytes_per_s, "gpu_copy_h2d"),
            (h.d2h_bytes_per_s, "gpu_copy_d2h"),
            (h.both_bytes_per_s, "gpu_copy_both"),
        ):
            if rate is None or peak is None:
                why = h.error or ("link generation/width unknown" if rate is not None else "not measured")
                out.append(
                    _f(
                        check,
                        c,
                        f">= {floor_pct:g}% of the trained link",
                        f"{_gbs(rate)}: {why}",
                        Verdict.INCONCLUSIVE,
                    )
                )
                continue
            floor = peak * floor_pct / 100
            verdict = Verdict.PASS if rate / 1e9 >= floor else Verdict.FAIL
            out.append(
                _f(
                    check,
                    c,
                    f">= {floor:.1f} GB/s ({floor_pct:g}% of {link} {peak:g} GB/s)",
                    f"{_gbs(rate)} ({rate / 1e9 / peak * 100:.0f}% of the link){where}",
                    verdict,
                )
            )
        if h.error and h.h2d_bytes_per_s is None:
            out.append(
                _f("gpu_copy_data", c, "0 bytes changed", f"not checked: {h.error}", Verdict.INCONCLUSIVE)
            )
        else:
            bad = h.mismatched_bytes
            out.append(
                _f(
                    "gpu_copy_data",
                    c,
                    "0 bytes changed on the way to the GPU and back",
                    f"{bad} bytes changed",
                    Verdict.FAIL if bad else Verdict.PASS,
                )
            )
    out += _spread(hosts, spread)
    return out


def _spread(hosts: Dict[int, HostCopy], spread: float) -> List[Finding]:
    out: List[Finding] = []
    for kind, attr in (("H2D", "h2d_bytes_per_s"), ("D2H", "d2h_bytes_per_s")):
        values: Dict[int, float] = {n: getattr(h, attr) for n, h in hosts.items() if getattr(h, attr)}
        if len(values) < 2:
            continue
        mid = statistics.median(values.values())
        for n, v in sorted(values.items()):
            off = (v - mid) / mid * 100
            out.append(
                make_finding(
                    "gpu_copy_spread",
                    f"gpu:{n}",
                    f"{kind} within ±{spread:g}% of the node median {mid / 1e9:.1f} GB/s",
                    f"{v / 1e9:.1f} GB/s ({off:+.1f}%)",
                    Verdict.FAIL if abs(off) > spread else Verdict.PASS,
                    "burnin",
                    [EVIDENCE],
                    suffix=f":{kind.lower()}",
                )
            )
    return out


def peer_findings(peers: List[PeerCopy], index: Dict[int, int], exp: Dict[str, Any]) -> List[Finding]:
    """`index`: CUDA ordinal -> NVML index (components name NVML indexes)."""
    want = exp.get("p2p")
    floor = exp.get("peer_min_gbs")
    out: List[Finding] = []
    for p in peers:
        if p.src < 0:
            out.append(
                _f(
                    "gpu_p2p_access",
                    "node",
                    "every GPU pair measured",
                    f"not measured: {p.error}",
                    Verdict.INCONCLUSIVE,
                )
            )
            continue
        c = f"gpu:{index.get(p.src, p.src)}->gpu:{index.get(p.dst, p.dst)}"
        if p.can_access is None:
            out.append(
                _f(
                    "gpu_p2p_access",
                    c,
                    f"peer access {want or 'reported'}",
                    f"not read: {p.error}",
                    Verdict.INCONCLUSIVE,
                )
            )
            continue
        seen = "expected" if p.can_access else "absent"
        if want in ("expected", "absent"):
            verdict = Verdict.PASS if seen == want else Verdict.FAIL
            out.append(_f("gpu_p2p_access", c, f"peer access {want}", f"peer access {seen}", verdict))
        else:
            out.append(
                _f(
                    "gpu_p2p_access",
                    c,
                    "a p2p expectation in the profile",
                    f"peer access {seen}",
                    Verdict.INCONCLUSIVE,
                    False,
                )
            )
        if p.error is not None and p.bytes_per_s is None:
            out.append(
                _f("gpu_p2p_data", c, "0 bytes changed", f"not copied: {p.error}", Verdict.INCONCLUSIVE)
            )
            continue
        route = "peer copy" if p.via == "peer" else "copy through host memory"
        out.append(
            _f(
                "gpu_p2p_data",
                c,
                f"0 bytes changed by the {route}",
                f"{p.mismatched_bytes} bytes changed",
                Verdict.FAIL if p.mismatched_bytes else Verdict.PASS,
            )
        )
        if p.via != "peer":
            continue
        if floor is None:
            out.append(
                _f(
                    "gpu_p2p_bandwidth",
                    c,
                    "a peer floor in the profile",
                    _gbs(p.bytes_per_s),
                    Verdict.INCONCLUSIVE,
                    False,
                )
            )
        else:
            rate = p.bytes_per_s
            verdict = (
                Verdict.INCONCLUSIVE
                if rate is None
                else Verdict.PASS
                if rate / 1e9 >= float(floor)
                else Verdict.FAIL
            )
            out.append(_f("gpu_p2p_bandwidth", c, f">= {float(floor):g} GB/s", _gbs(rate), verdict))
    return out


def copy_measurements(
    hosts: Dict[int, HostCopy], peers: List[PeerCopy], index: Dict[int, int]
) -> Dict[str, Any]:
    """The figures as the suite reports them (GB/s rounded to 0.1), for the controller and the golden."""

    def g(v: Optional[float]) -> Optional[float]:
        return None if v is None else round(v / 1e9, 1)

    return {
        "hosts": [
            {
                "index": n,
                "h2d_gbs": g(h.h2d_bytes_per_s),
                "d2h_gbs": g(h.d2h_bytes_per_s),
                "both_gbs": g(h.both_bytes_per_s),
                "link_gen": h.link_gen,
                "link_width": h.link_width,
                "numa_node": h.numa_node,
                "cpus": h.cpus,
                "pinned": h.pinned,
                "mismatched_bytes": h.mismatched_bytes,
                "error": h.error,
            }
            for n, h in sorted(hosts.items())
        ],
        "peers": [
            {
                "src": index.get(p.src, p.src),
                "dst": index.get(p.dst, p.dst),
                "can_access": p.can_access,
                "via": p.via,
                "gbs": g(p.bytes_per_s),
                "mismatched_bytes": p.mismatched_bytes,
                "error": p.error,
            }
            for p in peers
        ],
    }
