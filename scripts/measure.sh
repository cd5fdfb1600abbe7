#!/usr/bin/env bash
# Start-up and footprint of the cockpit, measured in a real terminal (tmux 80x24):
#   time to first frame and to first complete etcd data (from KHA_TIMINGS milestones),
#   peak RSS (VmHWM) and CPU used while idle over IDLE_SECONDS.
# Cases: `kha demo --etcd sim`, `kha demo --etcd real`, and `kha` against a real etcd
# cluster started separately with `kha lab up --etcd real`. Prints medians of RUNS runs.
# Usage: scripts/measure.sh [RUNS] [IDLE_SECONDS]      (defaults: 5 runs, 60 s idle)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
idle=${2:-60}
scripts/deps.sh
cargo build --release --locked -q
kha=$PWD/target/release/kha
work=$(mktemp -d)
sock=kha-measure-$$
lab_pid=""
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -n "$lab_pid" ] && kill "$lab_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
clk=$(getconf CLK_TCK)

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# run_case NAME IDLE(0|1) -- argv...
run_case() {
  local name=$1 do_idle=$2; shift 3
  local frames=() datas=() rss=()
  for i in $(seq 1 "$runs"); do
    local t=$work/$name-$i.jsonl
    tmux -L "$sock" -f /dev/null new-session -d -s m -x 80 -y 24 -e KHA_TIMINGS="$t" -e KHA_CONFIG_DIR="$work/cfg" "$@"
    for _ in $(seq 1 200); do grep -q first_etcd_data "$t" 2>/dev/null && break; sleep 0.05; done
    local pid
    pid=$(tmux -L "$sock" display-message -p -t m '#{pane_pid}')
    frames+=("$(grep first_frame "$t" | sed 's/.*"ms":\([0-9.]*\).*/\1/')")
    datas+=("$(grep first_etcd_data "$t" | sed 's/.*"ms":\([0-9.]*\).*/\1/')")
    if [ "$do_idle" = 1 ] && [ "$i" = 1 ]; then
      sleep 2
      local before after
      before=$(awk '{print $14+$15}' "/proc/$pid/stat")
      sleep "$idle"
      after=$(awk '{print $14+$15}' "/proc/$pid/stat")
      idle_cpu=$(awk -v a="$before" -v b="$after" -v s="$idle" -v c="$clk" 'BEGIN {printf "%.2f", (b-a)/c/s*100}')
    fi
    rss+=("$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")")
    tmux -L "$sock" send-keys -t m q
    for _ in $(seq 1 100); do tmux -L "$sock" has-session -t m 2>/dev/null || break; sleep 0.05; done
    tmux -L "$sock" kill-server 2>/dev/null || true
  done
  printf '%-28s first frame %7s ms   first etcd data %7s ms   peak RSS %6s KiB   idle CPU %s %%\n' \
    "$name" "$(printf '%s\n' "${frames[@]}" | median)" "$(printf '%s\n' "${datas[@]}" | median)" \
    "$(printf '%s\n' "${rss[@]}" | median)" "${idle_cpu:-n/a}"
  idle_cpu=""
}

echo "kha $(git describe --always --dirty 2>/dev/null || echo '?'), $runs runs each, idle over ${idle}s, $(nproc) cores"
run_case demo-sim 1 -- "$kha" demo --etcd sim
run_case demo-real 1 -- "$kha" demo --etcd real
"$kha" lab up --dir "$work/lab" --etcd real > "$work/lab.out" 2>&1 &
lab_pid=$!
for _ in $(seq 1 200); do [ -f "$work/lab/lab.env" ] && break; sleep 0.05; done
# shellcheck disable=SC1091
. "$work/lab/lab.env"
run_case real-cluster 1 -- env KHA_ETCD_ENDPOINTS="$KHA_ETCD_ENDPOINTS" "$kha"
