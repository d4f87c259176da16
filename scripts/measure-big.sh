#!/usr/bin/env bash
# Big inputs side by side in one run: wc over SIZE_MB of text in ONE file and in 100 FILES,
# distributed with 2 and 3 workers, and `mr seq` on the same files; wall time and the peak
# RSS (VmHWM) of every process; outputs checked equal (LC_ALL=C sort | grep .).
#   scripts/measure-big.sh [SIZE_MB]     (default 1024; the data is generated under a temp
#                                         dir and deleted at the end; needs ~2.5 x SIZE_MB disk)
# Environment: SPLIT (coordinator --split-size, default 64MiB), LEASE (--task-timeout, default
# 10m), APP (default wc).
# Measured 2026-11-29 21:17-21:46 UTC on the shared 2-core machine (load average 24-33 from other
# work; restart and small-tasks benchmarks ran beside it), 1 GiB, journaled leases:
#   one file:  mr seq 262 s, 208 MB | 2 workers 294 s (16 maps), workers 201/218 MB, coordinator 137 MB
#                                   | 3 workers 250 s, workers 230/219/201 MB, coordinator 143 MB
#   100 files: mr seq 298 s, 219 MB | 2 workers 129 s (17 maps), workers 210/205 MB, coordinator 144 MB
#                                   | 3 workers 198 s, workers 204/210/209 MB, coordinator 145 MB
#   every output equal to mr seq; 0 entries left under data/jobs and 0 files in worker dirs after each job
set -euo pipefail
size_mb=${1:-1024}
split=${SPLIT:-64MiB}
app=${APP:-wc}
lease=${LEASE:-10m}
root=$(cd "$(dirname "$0")/.." && pwd)
mr="node $root/apps/cli/bin/mr.js"
unset MR_TOKEN MR_WORKER_TOKEN OTEL_EXPORTER_OTLP_ENDPOINT
tmp=$(mktemp -d /tmp/mr-measure-big-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

# 100 files of SIZE_MB/100 each (8 distinct generated texts, cycled), and one file of all of them.
mkdir -p "$tmp/many" "$tmp/one"
node --import tsx -e "
const { generateText } = await import('$root/tests/src/corpus.ts');
const { writeFileSync } = await import('node:fs');
const per = Math.round($size_mb * 1024 * 1024 / 100);
const texts = Array.from({ length: 8 }, (_, i) => Buffer.from(generateText(1000 + i, per)));
for (let i = 0; i < 100; i++) writeFileSync('$tmp/many/part-' + String(i).padStart(3, '0') + '.txt', texts[i % 8].subarray(0, per));
"
cat "$tmp"/many/part-*.txt > "$tmp/one/all.txt"
echo "data: $(du -sh "$tmp/one/all.txt" | cut -f1) in one file; $(ls "$tmp/many" | wc -l) files of $(du -h "$tmp/many/part-000.txt" | cut -f1); split size $split; app $app; $(nproc) cores"

hwm() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo '?'; }

# run LAYOUT WORKERS: one coordinator and WORKERS workers, one job, then their peak RSS.
run() {
  local layout=$1 n=$2 files=("$tmp/$1"/*.txt)
  local d="$tmp/run-$layout-$n"
  mkdir -p "$d"
  local mypids=()
  $mr coordinator --port 0 --data "$d/data" --input-root "$tmp" --split-size "$split" --task-timeout "$lease" --log-level warn > "$d/coord.out" 2> "$d/coord.err" &
  local cpid=$!
  pids+=("$cpid")
  for _ in $(seq 600); do grep -q "listening on" "$d/coord.out" 2>/dev/null && break; sleep 0.1; done
  local url
  url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$d/coord.out")
  [ -n "$url" ] || { echo "coordinator did not start"; cat "$d/coord.err"; return 1; }
  for i in $(seq "$n"); do
    $mr worker --coordinator "$url" --work-dir "$d/w$i" > "$d/w$i.log" 2>&1 &
    mypids+=($!)
    pids+=($!)
  done
  for _ in $(seq 1200); do [ "$(curl -s "$url/v1/workers" | grep -o '"id"' | wc -l)" -ge "$n" ] && break; sleep 0.1; done
  local inputs
  inputs=$(printf '"%s",' "${files[@]}")
  local t0 t1 id state
  t0=$(date +%s.%N)
  id=$(curl -s -X POST -H 'content-type: application/json' "$url/v1/jobs" \
    -d "{\"app\":\"$app\",\"inputs\":[${inputs%,}],\"reduces\":$n,\"output\":\"$d/out\"}" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  while :; do
    state=$(curl -s "$url/v1/jobs/$id" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
    case $state in succeeded | failed | cancelled) break ;; esac
    sleep 0.2
  done
  t1=$(date +%s.%N)
  local job maps
  job=$(curl -s "$url/v1/jobs/$id")
  maps=$(echo "$job" | grep -o '"map":{"total":[0-9]*' | grep -o '[0-9]*$')
  local rss="coordinator $(hwm "$cpid") MB, workers"
  for p in "${mypids[@]}"; do rss="$rss $(hwm "$p")"; done
  rss="$rss MB"
  # Disk left by the job beyond its outputs: the coordinator removes the work dir when the job ends
  # (give it up to 10 s); worker dirs hold nothing but their logs.
  local left=-1
  for _ in $(seq 100); do left=$(find "$d/data/jobs" -mindepth 1 2>/dev/null | wc -l); [ "$left" -eq 0 ] && break; sleep 0.1; done
  rss="$rss; left under data/jobs: $left entries, spill/temp files in worker dirs: $(find "$d"/w* -type f ! -name '*.log' 2>/dev/null | wc -l)"
  kill "$cpid" "${mypids[@]}" 2>/dev/null || true
  wait "$cpid" "${mypids[@]}" 2>/dev/null || true
  printf '%-5s %d workers: %-9s %7.1f s  (%s map tasks)  peak RSS: %s\n' "$layout" "$n" "$state" "$(echo "$t1 - $t0" | bc)" "$maps" "$rss"
  [ "$state" = succeeded ] || { echo "$job" | grep -o '"error":"[^"]*"'; tail -n 5 "$d"/coord.err "$d"/w*.log; return 1; }
}

seqrun() {
  local layout=$1 files=("$tmp/$1"/*.txt)
  local out
  out=$( { /usr/bin/time -f '%e %M' $mr seq --app "$app" --output "$tmp/seq-$layout" "${files[@]}" > /dev/null; } 2>&1 | tail -1)
  printf '%-5s mr seq:    %-9s %7.1f s                    peak RSS: %d MB\n' "$layout" done "${out% *}" "$(( ${out#* } / 1024 ))"
}

same() {
  if cmp -s <(LC_ALL=C sort "$tmp/run-$1-$2"/out/mr-out* | grep .) <(LC_ALL=C sort "$tmp/seq-$1"/mr-out* | grep .); then
    echo "      outputs equal ($1, $2 workers vs mr seq): yes"
  else
    echo "      outputs equal ($1, $2 workers vs mr seq): NO"
    return 1
  fi
}

for layout in one many; do
  seqrun "$layout"
  for n in 2 3; do
    run "$layout" "$n"
    same "$layout" "$n"
  done
done
