#!/usr/bin/env bash
# Run the cockpit against the embedded lab (a simulated HA cluster on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh demo
exec cargo run --release --locked -- demo "$@"
