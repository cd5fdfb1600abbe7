#!/usr/bin/env bash
# Scale harness for the lab (prints numbers; not a test): start `kha lab up` with
# NODES worker nodes and PODS pods per node, then report the start time (until lab.env
# is written), the lab's RSS, and how long real clients take to list everything.
# Usage: scripts/lab-scale.sh [NODES] [PODS_PER_NODE] [RUNS]   (defaults 5000 30 3)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-5000}
pods=${2:-30}
runs=${3:-3}
scripts/deps.sh
cargo build --release --locked -q
kha=$PWD/target/release/kha
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
now_ms() { date +%s%3N; }
echo "kha lab at $nodes nodes x $pods pods/node, $runs runs, $(nproc) cores, $(git describe --always --dirty)"
for run in $(seq 1 "$runs"); do
  dir=$work/lab-$run
  t0=$(now_ms)
  "$kha" lab up --dir "$dir" --etcd sim --nodes "$nodes" --pods-per-node "$pods" > "$work/out-$run" 2>&1 &
  pid=$!
  until [ -f "$dir/lab.env" ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/out-$run"; exit 1; }
    sleep 0.02
  done
  t1=$(now_ms)
  # shellcheck disable=SC1091
  . "$dir/lab.env"
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  line="run $run: start $((t1 - t0)) ms, RSS $((rss / 1024)) MiB"
  if [ -n "${KUBECONFIG:-}" ]; then
    t2=$(now_ms)
    n=$(kubectl get nodes --no-headers | wc -l)
    t3=$(now_ms)
    p=$(kubectl get pods -A --no-headers --chunk-size=5000 | wc -l)
    t4=$(now_ms)
    rss2=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    line="$line; kubectl get nodes: $n in $((t3 - t2)) ms; get pods -A: $p in $((t4 - t3)) ms; RSS after $((rss2 / 1024)) MiB"
  fi
  echo "$line"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  unset KUBECONFIG
done
