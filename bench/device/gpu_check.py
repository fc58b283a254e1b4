"""GPU check on a lent GPU machine (run by gpu-check.sh): our NVML inventory vs nvidia-smi, the GPU suite
end to end with the built-in CUDA stressor (compute, 128-bit memory kernel beside a cuMemcpyDtoD of the
same traffic, the tensor-core power phase beside the streaming kernel, host<->GPU and peer copies, and
all_reduce_perf / dcgmi when installed), and our FLOP/s and GB/s vs a PyTorch reference on the same card.
Writes one JSON document; every step records its own error instead of stopping the others, and prints
one summary: power W / enforced limit, memory GB/s / DtoD GB/s, H2D and D2H GB/s, peer GB/s."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

SMI_FIELDS = [
    "index",
    "name",
    "uuid",
    "serial",
    "pci.bus_id",
    "memory.total",
    "pcie.link.gen.max",
    "pcie.link.width.max",
    "vbios_version",
    "power.limit",
    "ecc.mode.current",
    "driver_version",
    "compute_cap",
]
# nvidia-smi field -> (our Gpu attribute, normaliser)
COMPARE: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "name": ("name", str),
    "uuid": ("uuid", str),
    "serial": ("serial", str),
    "pci.bus_id": ("pci_bus_id", lambda v: str(v).lower()[-12:]),
    "memory.total": ("memory_mib", lambda v: int(float(v))),
    "pcie.link.gen.max": ("pcie_gen_max", lambda v: int(float(v))),
    "pcie.link.width.max": ("pcie_width_max", lambda v: int(float(v))),
    "vbios_version": ("vbios", lambda v: str(v).upper()),
    "power.limit": ("power_limit_w", lambda v: round(float(v))),
    "ecc.mode.current": ("ecc_enabled", lambda v: str(v).lower() in ("enabled", "true", "1")),
    "driver_version": ("driver_version", str),
    "compute_cap": ("compute_capability", str),
}


def smi() -> dict[str, Any]:
    """nvidia-smi --query-gpu, one field at a time where the whole list is refused (older nvidia-smi)."""

    def query(fields: list[str]) -> list[list[str]]:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [[c.strip() for c in line.split(",")] for line in out.stdout.strip().splitlines()]

    try:
        rows = query(SMI_FIELDS)
        return {"gpus": [dict(zip(SMI_FIELDS, r, strict=False)) for r in rows], "refused": []}
    except subprocess.CalledProcessError:
        pass
    gpus: list[dict[str, str]] = []
    refused = []
    for f in SMI_FIELDS:
        try:
            for n, r in enumerate(query([f])):
                while len(gpus) <= n:
                    gpus.append({})
                gpus[n][f] = r[0]
        except subprocess.CalledProcessError as exc:
            refused.append(f"{f}: {exc.stdout.strip() or exc.stderr.strip()}")
    return {"gpus": gpus, "refused": refused}


def compare_inventory(smi_gpus: list[dict[str, str]]) -> dict[str, Any]:
    from burnin import nvml

    gaps: dict[str, str] = {}
    ours = nvml.os_gpus(gaps)
    rows, mismatches = [], []
    for n, ref in enumerate(smi_gpus):
        mine = ours[n] if n < len(ours) else None
        row: dict[str, Any] = {}
        for field, (attr, norm) in COMPARE.items():
            if field not in ref or ref[field] in ("[N/A]", "N/A", "[Not Supported]"):
                continue
            a = getattr(mine, attr, None) if mine else None
            try:
                b = norm(ref[field])
                a2 = norm(a) if a is not None else None
            except ValueError:
                b, a2 = ref[field], a
            row[field] = {"nvidia_smi": ref[field], "ours": a, "match": a2 == b}
            if a2 != b:
                mismatches.append(f"gpu{n} {field}: nvidia-smi {ref[field]!r}, ours {a!r}")
        rows.append(row)
    return {"per_gpu": rows, "mismatches": mismatches, "count_ours": len(ours), "gaps": gaps}


def run_suite(duration_s: float, smi_gpus: list[dict[str, str]], run_dir: Path) -> dict[str, Any]:
    from burnin.context import SuiteContext, ToolRun
    from burnin.schema import Evidence, to_dict
    from burnin.suites import gpu

    events: list[dict[str, Any]] = []
    samples: list[dict[str, float]] = []
    samplers: dict[str, Any] = {}
    first = smi_gpus[0] if smi_gpus else {}
    expect: dict[str, Any] = {"count": len(smi_gpus)}
    if first.get("name"):
        expect["name"] = first["name"]
    if first.get("memory.total", "").isdigit():
        expect["memory_mib"] = int(first["memory.total"])

    def run_tool(
        evidence_id: str, argv: list[str], timeout_s: float, artifact: str | None = None, **_: Any
    ) -> ToolRun:
        """all_reduce_perf and dcgmi when the machine has them; anything else is not run here."""
        if argv[0] not in ("all_reduce_perf", "dcgmi") or shutil.which(argv[0]) is None:
            return ToolRun(Evidence(id=evidence_id, command=argv, error="not run here"), "", "", missing=True)
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=min(timeout_s, 240), check=False
            )
        except subprocess.TimeoutExpired:
            return ToolRun(Evidence(id=evidence_id, command=argv, error="timed out"), "", "", timed_out=True)
        ev = Evidence(id=evidence_id, command=argv, exit_code=done.returncode, excerpt=done.stdout[-2000:])
        return ToolRun(ev, done.stdout, done.stderr)

    ctx = SuiteContext(
        run_dir=run_dir,
        spec={
            "suite": "gpu",
            "duration_s": duration_s,
            "options": {"sample_interval_s": 1, "copies": True, "nccl": True, "power_share": 0.3},
        },
        plan={"expect": {"gpus": expect}, "sample_interval_s": 1},
        log=lambda event, **f: events.append({"event": event, **f}),
        run_tool=run_tool,
        add_sampler=lambda name, fn: samplers.__setitem__(name, fn),
        mark_phase=lambda name: events.append({"event": "phase", "name": name}),
        stop=threading.Event(),
    )
    stop = threading.Event()

    def telemetry() -> None:  # what the agent's telemetry thread does: read the latest sample each tick
        while not stop.wait(1.0):
            for fn in list(samplers.values()):
                values = fn()
                if values:
                    samples.append({"t": round(time.time(), 1), **values})

    t = threading.Thread(target=telemetry, daemon=True)
    t.start()
    started = time.time()
    result = gpu.run(ctx)
    stop.set()
    t.join()
    return {
        "wall_s": round(time.time() - started, 1),
        "expect": expect,
        "result": to_dict(result),
        "events": events,
        "telemetry_samples": samples[-5:],
        "telemetry_count": len(samples),
    }


def torch_reference(seconds: float) -> dict[str, Any]:
    import torch  # type: ignore[import-not-found, unused-ignore]

    out: list[dict[str, Any]] = []
    torch.backends.cuda.matmul.allow_tf32 = False  # plain FP32, as our FMA kernel is
    for d in range(torch.cuda.device_count()):
        dev = torch.device("cuda", d)
        n = 8192
        a = torch.randn(n, n, device=dev, dtype=torch.float32)
        b = torch.randn(n, n, device=dev, dtype=torch.float32)
        torch.matmul(a, b)
        torch.cuda.synchronize(dev)
        iters, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            torch.matmul(a, b)
            iters += 1
        torch.cuda.synchronize(dev)
        fp32 = 2.0 * n**3 * iters / (time.perf_counter() - t0)
        del a, b
        src = torch.empty(4 << 30, dtype=torch.uint8, device=dev)  # 4 GiB
        dst = torch.empty_like(src)
        dst.copy_(src)
        torch.cuda.synchronize(dev)
        copies, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            dst.copy_(src)
            copies += 1
        torch.cuda.synchronize(dev)
        # read + write bytes, the same accounting as our write+check kernels
        copy_bps = 2.0 * src.numel() * copies / (time.perf_counter() - t0)
        del src, dst
        torch.cuda.empty_cache()
        out.append(
            {
                "device": d,
                "name": torch.cuda.get_device_name(d),
                "fp32_tflops": fp32 / 1e12,
                "d2d_gbs": copy_bps / 1e9,
            }
        )
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "per_gpu": out}


def figures(m: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks of one run, side by side as ratios."""
    hosts = {h.get("index"): h for h in (m.get("copies") or {}).get("hosts", [])}
    rows = []
    for p in m.get("per_gpu", []):
        h = hosts.get(p.get("index"), {})
        watts, limit = p.get("sustained_power_w"), p.get("power_limit_enforced_w")
        mem, dtod = p.get("mem_gbs"), p.get("mem_copy_gbs")
        rows.append(
            {
                "gpu": p.get("index"),
                "power_w": watts,
                "enforced_limit_w": limit,
                "power_over_limit": round(watts / limit, 3) if watts and limit else None,
                "mem_gbs": mem,
                "dtod_gbs": dtod,
                "mem_over_dtod": round(mem / dtod, 3) if mem and dtod else None,
                "h2d_gbs": h.get("h2d_gbs"),
                "d2h_gbs": h.get("d2h_gbs"),
                "both_gbs": h.get("both_gbs"),
                "link": f"Gen{h.get('link_gen')} x{h.get('link_width')}" if h else None,
                "numa_node": h.get("numa_node"),
                "tflops": p.get("tflops"),
            }
        )
    peers = [
        {k: q.get(k) for k in ("src", "dst", "can_access", "via", "gbs", "mismatched_bytes")}
        for q in (m.get("copies") or {}).get("peers", [])
    ]
    return {"per_gpu": rows, "peers": peers, "nccl": m.get("nccl")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--reference-s", type=float, default=20.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    doc: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version,
    }
    out = Path(args.out)

    def step(name: str, fn: Any, *a: Any) -> Any:
        t0 = time.time()
        try:
            doc[name] = fn(*a)
        except Exception:  # the device run is one shot: record and go on to the next step
            doc[name] = {"error": traceback.format_exc(limit=4)}
        doc.setdefault("step_s", {})[name] = round(time.time() - t0, 1)
        out.write_text(json.dumps(doc, indent=1, default=str))  # partial results survive a timeout
        return doc[name]

    ref = step("nvidia_smi", smi)
    smi_gpus = ref.get("gpus", []) if isinstance(ref, dict) else []
    step("inventory", compare_inventory, smi_gpus)
    step("suite", run_suite, args.duration, smi_gpus, out.parent)
    step("reference", torch_reference, args.reference_s)
    suite, torch_ref = doc.get("suite", {}), doc.get("reference", {})
    per_gpu = (
        suite.get("result", {}).get("measurements", {}).get("per_gpu", []) if isinstance(suite, dict) else []
    )
    refs = torch_ref.get("per_gpu", []) if isinstance(torch_ref, dict) else []
    doc["ratios"] = [
        {
            "gpu": p["index"],
            "ours_tflops": p.get("tflops"),
            "torch_fp32_tflops": r["fp32_tflops"],
            "ours_over_torch_compute": (p.get("tflops") or 0) / r["fp32_tflops"]
            if r["fp32_tflops"]
            else None,
            "ours_mem_gbs": p.get("mem_gbs"),
            "torch_d2d_gbs": r["d2d_gbs"],
            "ours_over_torch_memory": (p.get("mem_gbs") or 0) / r["d2d_gbs"] if r["d2d_gbs"] else None,
        }
        for p, r in zip(per_gpu, refs, strict=False)
    ]
    doc["suite_verdict"] = suite.get("result", {}).get("verdict") if isinstance(suite, dict) else None
    doc["figures"] = figures(
        suite.get("result", {}).get("measurements", {}) if isinstance(suite, dict) else {}
    )
    out.write_text(json.dumps(doc, indent=1, default=str))
    print(
        json.dumps(
            {
                "suite_verdict": doc["suite_verdict"],
                "figures": doc["figures"],
                "ratios": doc["ratios"],
                "mismatches": doc.get("inventory", {}).get("mismatches"),
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
