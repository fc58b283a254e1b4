#!/usr/bin/env bash
# `make demo`: the main job on the embedded lab. Until the lab lands, it shows the foundation on the
# seed hosts: lint, show and status.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
echo "== provision lint"
provision --state "$state" lint
echo "== provision show inferno-host-compute-1"
provision --state "$state" show inferno-host-compute-1
echo "== provision status"
provision --state "$state" status
