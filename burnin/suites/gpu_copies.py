"""The GPU suite's copy phase, after the load: host<->GPU bandwidth per GPU with its NUMA affinity,
and the peer matrix with peer copies (burnin.gpu_copy), judged by burnin.gpu_link_verdicts.

It runs when the suite's option `copies` is true, or by default when the plan expects PCIe floors
(plan["expect"]["gpus"]["pcie_floor_pct"]). Options: copy_mib (per copy, default 256), copy_repeats
(default 5), sysfs_root (default /sys: where numa_node, local_cpulist and the link speed are read; a
link sysfs does not give is NVML's, as seen under the load).
The figures go to measurements["copies"] ({"hosts": [...], "peers": [...]}).

Standard library only, Python >= 3.9.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from burnin.context import SuiteContext
from burnin.gpu_copy import CopyBench
from burnin.gpu_link_verdicts import EVIDENCE, copy_measurements, host_findings, peer_findings
from burnin.gpu_load import CudaStressor
from burnin.schema import Evidence, SuiteResult, Verdict, make_finding


def wanted(ctx: SuiteContext, exp: Dict[str, Any]) -> bool:
    return bool(ctx.options.get("copies", "pcie_floor_pct" in exp))


def copy_phase(
    ctx: SuiteContext,
    loads: Dict[str, Any],
    exp: Dict[str, Any],
    result: SuiteResult,
    links: Optional[Dict[int, Tuple[Optional[int], Optional[int]]]] = None,
) -> None:
    """`links`: NVML's PCIe generation and width per NVML index, seen under the load: the link of a GPU
    whose sysfs entry does not say (link_source "nvml" instead of "sysfs")."""
    opts = ctx.options
    judged: Dict[str, Any] = {
        **exp,
        **{k: opts[k] for k in ("pcie_floor_pct", "pcie_spread_pct", "p2p", "peer_min_gbs") if k in opts},
    }
    stressor, devices = loads.get("stressor"), loads.get("devices") or {}
    if not isinstance(stressor, CudaStressor) or not devices:
        why = "no CUDA device to copy with" if devices == {} else "the stressor has no libcuda"
        result.evidence.append(Evidence(id=EVIDENCE, command=["builtin:cuda-copies"], error=why))
        result.findings.append(
            make_finding(
                "gpu_copy_h2d",
                "gpus",
                "host<->GPU copies measured",
                why,
                Verdict.INCONCLUSIVE,
                "burnin",
                [EVIDENCE],
            )
        )
        return
    bench = CopyBench(
        stressor,
        size_mib=int(opts.get("copy_mib", 256)),
        repeats=int(opts.get("copy_repeats", 5)),
        sysfs=str(opts.get("sysfs_root", "/sys")),
    )
    ctx.mark_phase("gpu.copies")
    ordered = sorted(devices.items())
    report = bench.run([d for _, d in ordered], ctx.stop)
    ctx.mark_phase("gpu.idle")
    index = {d.ordinal: n for n, d in ordered}
    hosts = {index[h.ordinal]: h for h in report.hosts}
    sources: Dict[int, str] = {}
    for n, h in hosts.items():
        gen, width = (links or {}).get(n, (None, None))
        if h.link_gen is None and gen and width:
            h.link_gen, h.link_width = gen, width
            sources[n] = "nvml"
        elif h.link_gen is not None:
            sources[n] = "sysfs"
    figures = copy_measurements(hosts, report.peers, index)
    for row in figures["hosts"]:
        row["link_source"] = sources.get(row["index"])
    result.measurements["copies"] = figures
    result.evidence.append(
        Evidence(
            id=EVIDENCE,
            command=["builtin:cuda-copies", f"copy_mib={bench.size >> 20}", f"repeats={bench.repeats}"],
            excerpt="; ".join(
                f"gpu{h['index']}: H2D {h['h2d_gbs']} D2H {h['d2h_gbs']} both {h['both_gbs']} GB/s"
                f" (Gen{h['link_gen']} x{h['link_width']}, NUMA {h['numa_node']})"
                for h in figures["hosts"]
            ),
        )
    )
    for h in figures["hosts"]:
        ctx.log("gpu_copy_result", **h)
    result.findings += host_findings(hosts, judged)
    result.findings += peer_findings(report.peers, index, judged)
