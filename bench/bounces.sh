#!/usr/bin/env bash
# The bounce classifier's benchmark (BENCHMARKS.md, "Bounce classification"): 10,000 DSNs
# generated from tests/bounces, classified, against mailparse alone on the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release --example bounce_bench
