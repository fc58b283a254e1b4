"""Pure: fio job files built from the plan. Read workloads run under `fio --readonly`; write
workloads and the crc32c integrity pass only exist for targets the agent was allowed to write.
"""

from __future__ import annotations

from typing import Any, Dict, List

READ_JOBS = ("seq_read", "rand_read")
WRITE_JOBS = ("seq_write", "rand_write", "verify")

_WORKLOADS: Dict[str, Dict[str, str]] = {
    "seq_read": {"rw": "read", "bs": "128k", "iodepth": "32"},
    "rand_read": {"rw": "randread", "bs": "4k", "iodepth": "32", "norandommap": "1", "randrepeat": "0"},
    "seq_write": {"rw": "write", "bs": "128k", "iodepth": "32"},
    "rand_write": {"rw": "randwrite", "bs": "4k", "iodepth": "32", "norandommap": "1", "randrepeat": "0"},
}


def build_job(filename: str, jobs: List[str], runtime_s: float, opts: Dict[str, Any]) -> str:
    """One fio job file: the jobs run one after another (stonewall), each for runtime_s seconds;
    `verify` writes `verify_size_mib` (or the whole target) with crc32c and reads it back."""
    lines = [
        "[global]",
        f"filename={filename}",
        f"ioengine={opts.get('ioengine', 'libaio')}",
        f"direct={1 if opts.get('direct', True) else 0}",
        "group_reporting=1",
        f"numjobs={int(opts.get('numjobs', 1))}",
    ]
    if opts.get("size_mib"):
        lines.append(f"size={int(opts['size_mib'])}m")
    for name in jobs:
        lines += ["", f"[{name}]", "stonewall"]
        if name == "verify":
            lines += [
                "rw=write",
                "bs=128k",
                "iodepth=16",
                "numjobs=1",
                "verify=crc32c",
                "do_verify=1",
                "verify_fatal=1",
                "verify_dump=1",
                "verify_state_save=0",
            ]
            if opts.get("verify_size_mib"):
                lines.append(f"size={int(opts['verify_size_mib'])}m")
            continue
        lines += [f"{k}={v}" for k, v in _WORKLOADS[name].items()]
        lines += ["time_based=1", f"runtime={max(1, int(runtime_s))}s"]
        if opts.get("ramp_s"):
            lines.append(f"ramp_time={int(opts['ramp_s'])}s")
    return "\n".join(lines) + "\n"
