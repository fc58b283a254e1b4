"""Power admission benchmark: 20 hosts on two PDUs whose continuous budget fits 3 burns each.

The hosts are the test profile flow-loopback (a 760 W burn on a 2662 W feed: 3 fit, 4 do not),
10 on each PDU; every step is a stand-in but the burn, which lasts --burn-s seconds, and the fleet,
the host runner, the engine, the journal (a real SQLite state store) and the admission are the real
ones. Side by side in one run: the same fleet with admission, and without (every host burns at once).

Measured from the journal (each guarded step's row carries when it was admitted and when its holds
ended; without admission, the steps' own start and end): the most hosts burning at once on each PDU
and their summed burn peak against its budget, and the wall time against what the budget allows:
ceil(10 / 3) = 4 waves of one burn each.

Run: .venv/bin/python -m bench.power_admission [--burn-s 2]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from provision.flow.admission import Admission, burn_peak_w, pdu_budgets
from provision.flow.engine import Cancel, StepCall
from provision.store.state import StateStore
from tests.support.admission_rig import Recorder, catalog_for, intervals, most_at_once, run_power_fleet

PDUS = ("inferno-pdu-circle1-1", "inferno-pdu-circle1-2")
HOSTS_PER_PDU = 10


def measure(work: Path, burn_s: float, admitted: bool) -> dict[str, Any]:
    pdus = {f"flow-node-{i:02d}": PDUS[i % 2] for i in range(2 * HOSTS_PER_PDU)}
    catalog = catalog_for(work, pdus)
    limits = catalog.site.limits
    budgets = pdu_budgets(((h.pdu, catalog.profile_of(h)) for h in catalog.hosts.values()), limits)
    admission = Admission(limits, budgets, poll_s=0.05) if admitted else None
    cancel = Cancel()

    def burn(call: StepCall) -> None:
        cancel.sleep(burn_s)

    store = StateStore.open(work / "state")
    try:
        start = time.monotonic()
        rows = run_power_fleet(work, catalog, admission, Recorder(), burn, cancel, store)
        wall = time.monotonic() - start
        peak_w = burn_peak_w(catalog.profile_of(catalog.host("flow-node-00")))
        per_pdu = {}
        for pdu in PDUS:
            spans = [
                s
                for h, p in pdus.items()
                if p == pdu
                for s in intervals(store, h, "start_burnin", "follow_burnin")
            ]
            most = most_at_once(spans)
            per_pdu[pdu] = {
                "budget_w": round(budgets[pdu], 1),
                "most_burning": most,
                "peak_w": round(most * peak_w, 1),
                "within_budget": most * peak_w <= budgets[pdu],
            }
    finally:
        store.close()
    fits = int(budgets[PDUS[0]] // peak_w)
    allowed = math.ceil(HOSTS_PER_PDU / fits) * burn_s
    return {
        "admission": admitted,
        "hosts": len(pdus),
        "ok": sum(1 for r in rows if r.outcome == "ok"),
        "burn_w": peak_w,
        "burns_per_pdu_fit": fits,
        "burn_s": burn_s,
        "wall_s": round(wall, 2),
        "waves_allowed_s": allowed,
        "wall_over_allowed": round(wall / allowed, 2),
        "pdus": per_pdu,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--burn-s", type=float, default=2.0)
    args = p.parse_args()
    rows = []
    for admitted in (True, False):
        with tempfile.TemporaryDirectory(prefix="bench-power-") as tmp:
            rows.append(measure(Path(tmp), args.burn_s, admitted))
        print(json.dumps(rows[-1]), flush=True)
    print("admission | hosts | ok | wall_s | allowed_s | most burning per PDU | within budget")
    for r in rows:
        most = "/".join(str(v["most_burning"]) for v in r["pdus"].values())
        within = all(v["within_budget"] for v in r["pdus"].values())
        cells = (r["admission"], r["hosts"], r["ok"], r["wall_s"], r["waves_allowed_s"], most, within)
        print(" | ".join(str(c) for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
