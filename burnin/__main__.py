"""The agent's entry point: `python3 burnin-agent.pyz COMMAND ...` (or `python3 -m burnin`).

    run PLAN --run-dir DIR           run in the foreground
    start PLAN --runs DIR            run detached under DIR/<run_id>; re-attaches if already started
    status --run-dir DIR             JSON status of a run
    follow --run-dir DIR [--skip N] [--timeout S]   stream the event log (JSON lines)
    collect --run-dir DIR            print the result document (exit 0 finished, 4 not finished)
    stop --run-dir DIR               ask a running agent to stop (its suites end inconclusive)
    inventory                        print the in-OS hardware inventory

Exit codes: 0 done, 2 bad plan or usage, 3 could not run, 4 the run is not finished.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import List, Optional

from burnin import daemon
from burnin.planfile import PlanError, load_plan
from burnin.runner import RESULT, Runner


def _print(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=1) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="burnin-agent", description="Inferno burn-in agent")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("plan", type=Path)
    r.add_argument("--run-dir", type=Path, required=True)
    s = sub.add_parser("start")
    s.add_argument("plan", type=Path)
    s.add_argument("--runs", type=Path, required=True, help="directory holding one folder per run")
    for name in ("status", "collect", "stop"):
        sub.add_parser(name).add_argument("--run-dir", type=Path, required=True)
    f = sub.add_parser("follow")
    f.add_argument("--run-dir", type=Path, required=True)
    f.add_argument("--skip", type=int, default=0, help="event lines already seen")
    f.add_argument("--timeout", type=float, default=0)
    sub.add_parser("inventory")
    args = p.parse_args(argv)

    try:
        if args.cmd == "run":
            plan = load_plan(args.plan)
            runner = Runner(plan, args.run_dir)
            signal.signal(signal.SIGTERM, lambda *_: runner.stop.set())
            result = runner.run()
            _print({"run_id": result.run_id, "verdict": result.verdict.value, "run_dir": str(args.run_dir)})
            return 0
        if args.cmd == "start":
            plan = load_plan(args.plan)
            _print(daemon.start(plan, args.runs / plan["run_id"]))
            return 0
        if args.cmd == "status":
            _print(daemon.status(args.run_dir))
            return 0
        if args.cmd == "follow":
            return daemon.follow(args.run_dir, args.skip, args.timeout)
        if args.cmd == "collect":
            st = daemon.status(args.run_dir)
            if st["state"] != "finished":
                sys.stderr.write(f"burnin-agent: run {args.run_dir} is {st['state']}, not finished\n")
                return 4
            sys.stdout.write((args.run_dir / RESULT).read_text())
            return 0
        if args.cmd == "stop":
            _print({"stopped": daemon.stop(args.run_dir)})
            return 0
        if args.cmd == "inventory":
            from burnin.inventory import collect_inventory
            from burnin.tools import ToolRunner

            with tempfile.TemporaryDirectory() as tmp:
                inv = collect_inventory(ToolRunner(Path(tmp), lambda *a, **k: None, threading.Event()))
            _print(inv.to_dict())
            return 0
    except PlanError as exc:
        sys.stderr.write(f"burnin-agent: {exc}\n")
        return 2
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"burnin-agent: {exc}\n")
        return 3
    return 2


if __name__ == "__main__":
    sys.exit(main())
