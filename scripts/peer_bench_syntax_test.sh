#!/usr/bin/env bash
# bash -n of scripts/peer_bench.sh (the benchmark itself is run by hand).
set -euo pipefail
bash -n "$1"
grep -q -- "--events N" "$1"
echo "PASS: $1 parses"
