#!/usr/bin/env bash
# Wall time of a wc job with 3 workers beside `mr seq` on the same files, in one run.
#   scripts/measure-wc.sh FILE...        (e.g. ../shared/corpus/gutenberg/*.txt)
# Starts a coordinator and 3 workers on a free port in a temp dir, waits until the
# workers are registered, then times `mr submit --wait` (whole command, CLI start
# included) and the job itself (as the coordinator reports it), then `mr seq`, and
# checks that both outputs are the same (LC_ALL=C sort | grep .).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
mr="node $root/apps/cli/bin/mr.js"
tmp=$(mktemp -d)
files=()
for f in "$@"; do files+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done
inroot=$(dirname "${files[0]}")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
$mr coordinator --port 0 --data "$tmp/data" --input-root "$inroot" --log-level warn > "$tmp/coord.out" 2> "$tmp/coord.err" &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$tmp/coord.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$tmp/coord.out")
for i in 1 2 3; do $mr worker --coordinator "$url" > "$tmp/w$i.log" 2>&1 & pids+=($!); done
for _ in $(seq 200); do [ "$(curl -s "$url/v1/workers" | grep -o '"id"' | wc -l)" -ge 3 ] && break; sleep 0.1; done
t0=$(date +%s.%N)
$mr submit --coordinator "$url" --app wc --output "$tmp/out" --wait "${files[@]}" > "$tmp/submit.out" 2>&1
t1=$(date +%s.%N)
$mr seq --app wc --output "$tmp/seq" "${files[@]}" > /dev/null
t2=$(date +%s.%N)
job=$(grep -o 'succeeded in [0-9.]* s' "$tmp/submit.out" | tail -1)
same=no
cmp -s <(LC_ALL=C sort "$tmp"/out/mr-out* | grep .) <(LC_ALL=C sort "$tmp"/seq/mr-out* | grep .) && same=yes
printf 'distributed (3 workers): job %s; mr submit --wait wall %.2f s\n' "$job" "$(echo "$t1 - $t0" | bc)"
printf 'sequential: mr seq wall %.2f s\n' "$(echo "$t2 - $t1" | bc)"
echo "outputs equal: $same ($(LC_ALL=C sort "$tmp"/out/mr-out* | grep . | wc -l) lines, sha256 $(LC_ALL=C sort "$tmp"/out/mr-out* | grep . | sha256sum | cut -c1-16)…)"
