#!/usr/bin/env bash
# `make demo`: a short prelude on the seed hosts (lint, show, status, kickstart), then the main job
# on the embedded lab: `provision lab up`, `provision host lab-node-1` end to end inside the lab's
# controller namespace, the report's path, and `provision lab down` (always, by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
state=$(mktemp -d /var/tmp/inferno-demo.XXXXXX)
lab_id=${PROVISION_LAB_ID:-demo}
lab_up=0
cleanup() {
  if [ "$lab_up" = 1 ]; then
    echo "== provision lab down"
    provision --state "$state" lab down --id "$lab_id" || true
  fi
}
trap cleanup EXIT
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

echo "== provision lint"
provision --state "$state" lint
echo "== provision show inferno-host-compute-1"
provision --state "$state" show inferno-host-compute-1
echo "== provision status"
provision --state "$state" status
echo "== provision kickstart inferno-host-compute-1 (first lines)"
provision --state "$state" kickstart inferno-host-compute-1 -o "$state/compute-1.ks.cfg"
grep -v '^#' "$state/compute-1.ks.cfg" | sed -n '1,25p'
echo "   (provision inspect inferno-host-compute-1 needs its BMC at 10.0.1.21, which is not here;"
echo "    the lab below inspects lab-node-1 through its own BMC instead)"

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: the lab needs root (network namespaces, bridges, libvirtd); run make demo as root" >&2
  exit 2
fi
stamp "== provision lab up (the first run on a machine builds the Debian image: ~3 min)"
lab_up=1
provision --state "$state" lab up --id "$lab_id"
key="$state/lab/$lab_id/ssh/id_ed25519"

stamp "== provision inspect lab-node-1 (Redfish through the lab's BMC)"
provision --state "$state" lab exec --id "$lab_id" -- provision inspect lab-node-1 || true

stamp "== provision host lab-node-1 (Redfish -> UEFI PXE -> kickstart -> install -> SSH -> burn-in -> report)"
set +e
provision --state "$state" lab exec --id "$lab_id" -- \
  provision host lab-node-1 --identity "$key"
rc=$?
set -e
stamp "== the verdict and the report"
provision --state "$state" lab exec --id "$lab_id" -- provision status lab-node-1 || true
report=$(find "$state/runs" -name report.html 2>/dev/null | sort | tail -1)
verdict=unknown
if [ -n "$report" ]; then
  verdict=$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' \
    "$(dirname "$report")/acceptance.json" 2>/dev/null || echo unknown)
fi
echo "report: ${report:-none written}"
echo "verdict: $verdict (provision host exit $rc)"
[ "$verdict" = accepted ] || { [ "$rc" -ne 0 ] || rc=1; }
stamp "== done (exit $rc); state kept in $state"
exit "$rc"
