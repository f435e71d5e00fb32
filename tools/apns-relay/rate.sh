#!/usr/bin/env bash
# The relay's rate against apns-push's, on one apns-mock and one redis-server of its own (unix socket in a temp
# directory): N notifications through apns-push --bulk, then N stream entries through 1, 2 and 4 relays (time from
# the relays' start to the last result in the results stream), with the CPU time redis-server and the relays
# spent per entry (from /proc: the figure that holds when the machine is shared and wall times are not).
#   tools/apns-relay/rate.sh [BUILD_DIR] [N]      (defaults: build, 100000)
set -euo pipefail
build=${1:-build}
n=${2:-100000}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
pids+=($!)
"$build/tools/apns-mock/apns-mock" --self-signed "$tmp/certs" >"$tmp/mock.out" 2>"$tmp/mock.err" &
pids+=($!)
until [ -s "$tmp/mock.out" ] && redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1; do sleep 0.1; done
port=$(head -1 "$tmp/mock.out")
apns=(--host "127.0.0.1:$port" --verify-name localhost --ca "$tmp/certs/ca.pem" --cert "$tmp/certs/client.pem"
      --key "$tmp/certs/client-key.pem" --topic com.example.app)
for ((i = 0; i < n; i++)); do
  printf '{"token":"%064x","payload":{"aps":{"alert":"n%d"}}}\n' "$i" "$i"
done >"$tmp/lines.jsonl"
now() { date +%s.%N; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # user + system, in clock ticks
hz=$(getconf CLK_TCK)
rate() { awk -v a="$1" -v b="$2" -v n="$n" 'BEGIN { printf "%d in %.2f s, %.0f/s", n, b - a, n / (b - a) }'; }
t0=$(now)
"$build/tools/apns-push/apns-push" "${apns[@]}" --bulk "$tmp/lines.jsonl" --results /dev/null --no-progress 2>/dev/null
t1=$(now)
echo "apns-push: $(rate "$t0" "$t1")"
for relays in 1 2 4; do
  redis-cli -s "$tmp/redis.sock" FLUSHALL >/dev/null
  # Entries through redis-cli's pipe mode (RESP built by awk: one XADD per line).
  awk '{ printf "*5\r\n$4\r\nXADD\r\n$4\r\napns\r\n$1\r\n*\r\n$12\r\nnotification\r\n$%d\r\n%s\r\n", length($0), $0 }' \
    "$tmp/lines.jsonl" | redis-cli -s "$tmp/redis.sock" --pipe >/dev/null
  rp=()
  r0=$(ticks "$redis_pid")
  t0=$(now)
  for ((k = 0; k < relays; k++)); do
    "$build/tools/apns-relay/apns-relay" --redis "unix://$tmp/redis.sock" "${apns[@]}" --consumer "r$k" \
      2>"$tmp/relay$k.log" &
    rp+=($!)
  done
  until [ "$(redis-cli -s "$tmp/redis.sock" XLEN apns:results)" -ge "$n" ]; do sleep 0.02; done
  t1=$(now)
  r1=$(ticks "$redis_pid")
  c=0
  for p in "${rp[@]}"; do c=$((c + $(ticks "$p"))); done
  for p in "${rp[@]}"; do kill -TERM "$p"; done
  wait "${rp[@]}" || true
  cpu=$(awk -v r=$((r1 - r0)) -v c=$c -v hz="$hz" -v n="$n" \
    'BEGIN { printf "CPU per entry: redis-server %.1f us, relays %.1f us", r / hz / n * 1e6, c / hz / n * 1e6 }')
  echo "apns-relay x$relays: $(rate "$t0" "$t1"); $cpu"
done
