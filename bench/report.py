"""Benchmark: the report of a 72-hour 1 Hz run (24 series, 259,201 samples), side by side with the
floor any reader pays (json.loads of every line). Prints seconds and ratios; run on a quiet machine.

    .venv/bin/python -m bench.report [HOURS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from provision.acceptance.runfiles import load_run_dir
    from provision.cli.acceptance import accept_files, power_sums
    from provision.cli.app import App
    from provision.cli.commands.report import render
    from provision.model.catalog import default_profiles_dir
    from tests.support.longrun import write_long_run

    hours = int(sys.argv[1]) if len(sys.argv) > 1 else 72
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        t = time.perf_counter()
        samples = write_long_run(run, hours)
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        with (run / "telemetry.jsonl").open() as f:
            for line in f:
                json.loads(line)
        floor_s = time.perf_counter() - t
        app = App(profiles_dir=default_profiles_dir())
        t = time.perf_counter()
        files = load_run_dir(run, power_sums(app))
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        acc = accept_files(app, files, "burnin", None)
        accept_s = time.perf_counter() - t
        t = time.perf_counter()
        html = render(acc, files, "html")
        render_s = time.perf_counter() - t
        size = (run / "telemetry.jsonl").stat().st_size
    print(f"{hours} h, {samples} samples, telemetry {size / 1e6:.0f} MB (written in {write_s:.1f} s)")
    print(f"  json.loads of every line (floor)   {floor_s:6.2f} s")
    print(f"  load (parse + bucket + digests)    {load_s:6.2f} s   {load_s / floor_s:4.1f}x the floor")
    print(f"  validate + record                  {accept_s:6.2f} s")
    print(f"  render HTML                        {render_s:6.2f} s   report {len(html) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
