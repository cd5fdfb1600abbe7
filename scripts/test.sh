#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked -- --test-threads 2
