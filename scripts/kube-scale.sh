#!/usr/bin/env bash
# Cost of the kube source on a big cluster: against `kha lab up --nodes N
# --pods-per-node 30 --churn 200`, the time `kha status --json` takes to first complete
# data (every watch listed), then the TUI (`kha` with only KUBECONFIG set, in tmux 80x24)
# for IDLE_SECONDS: peak RSS (VmHWM) and CPU of the kha process alone (not the lab's).
# Usage: [CHURN=R] scripts/kube-scale.sh [IDLE_SECONDS] [NODES...]   (defaults: 200, 60, 5000 500)
# KHA=path uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${1:-60}
churn=${CHURN:-200}
shift || true
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(5000 500)
if [ -z "${KHA:-}" ]; then
  cargo build --release --locked -q
  KHA=$PWD/target/release/kha
fi
command -v tmux >/dev/null || { echo "tmux is needed: apt-get install tmux" >&2; exit 1; }
work=$(mktemp -d)
sock=kha-kube-scale-$$
lab_pid=""
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -n "$lab_pid" ] && kill "$lab_pid" 2>/dev/null && wait "$lab_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
clk=$(getconf CLK_TCK)

echo "kha $(git describe --always --dirty 2>/dev/null || echo '?') ($KHA), $(nproc) cores, idle over ${idle}s"
for nodes in "${sizes[@]}"; do
  dir=$work/lab-$nodes
  started=$(date +%s.%N)
  "$KHA" lab up --dir "$dir" --etcd sim --nodes "$nodes" --pods-per-node 30 --churn "$churn" \
    >"$work/lab-$nodes.log" 2>&1 &
  lab_pid=$!
  for _ in $(seq 1 1200); do [ -f "$dir/lab.env" ] && break; sleep 0.1; done
  [ -f "$dir/lab.env" ] || { echo "lab did not start:"; cat "$work/lab-$nodes.log"; exit 1; }
  lab_secs=$(echo "$(date +%s.%N) - $started" | bc)
  kubeconfig=$dir/kubeconfig
  env_clean=(env -u KHA_ETCD_ENDPOINTS -u KHA_APISERVER_BACKENDS -u KHA_LB_STATS
             KHA_CONFIG_DIR="$work/cfg" KUBECONFIG="$kubeconfig")

  t0=$(date +%s%N)
  "${env_clean[@]}" "$KHA" status --json >"$work/status-$nodes.json" || true
  t1=$(date +%s%N)
  status_ms=$(( (t1 - t0) / 1000000 ))
  complete=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); f=d['kube']['feeds']; \
print('complete' if f and all(x['availability']=='live' for x in f) else 'INCOMPLETE', \
sum(x['objects'] for x in f if x['resource']=='nodes'), 'nodes')" "$work/status-$nodes.json")

  tmux -L "$sock" -f /dev/null new-session -d -s m -x 80 -y 24 \
    -e KUBECONFIG="$kubeconfig" -e KHA_CONFIG_DIR="$work/cfg" \
    "env -u KHA_ETCD_ENDPOINTS -u KHA_APISERVER_BACKENDS -u KHA_LB_STATS $KHA"
  pid=$(tmux -L "$sock" display-message -p -t m '#{pane_pid}')
  sleep 5
  before=$(awk '{print $14+$15}' "/proc/$pid/stat")
  sleep "$idle"
  after=$(awk '{print $14+$15}' "/proc/$pid/stat")
  cpu=$(awk -v a="$before" -v b="$after" -v s="$idle" -v c="$clk" 'BEGIN {printf "%.2f", (b-a)/c/s*100}')
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  screen=$(tmux -L "$sock" capture-pane -p -t m | grep -m1 "Control plane" || true)
  tmux -L "$sock" send-keys -t m q
  sleep 1
  tmux -L "$sock" kill-server 2>/dev/null || true
  kill "$lab_pid" 2>/dev/null; wait "$lab_pid" 2>/dev/null || true
  lab_pid=""
  printf 'nodes %-5s lab up %5.1fs · status --json %5s ms (%s) · TUI peak RSS %6s KiB · CPU %s %% of a core (churn %s/s)\n' \
    "$nodes" "$lab_secs" "$status_ms" "$complete" "$rss" "$cpu" "$churn"
done
