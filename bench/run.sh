#!/usr/bin/env bash
# Speed and memory of `sockscope conns --format jsonl FILE > /dev/null` on generated captures,
# next to `cat FILE` (the I/O floor) and, when installed, tshark, Argus and tcptrace on the same file;
# the Parquet output; the Python package (`sockscope.connections`) when BENCH_PYTHON (default
# python3) has it, and NFStream when NFSTREAM_PYTHON (default: the same) has it (one run each:
# it takes minutes on the scan profile).
#
#   bench/run.sh [PACKETS]        (default 2000000 per profile; inputs go to target/bench-data)
#
# Inputs are generated once by `cargo run --release --example gen` and never committed.
# Each tool runs after the file was read once (page cache warm); the best of 3 runs is kept.
# Needs GNU time (/usr/bin/time) for max RSS. tshark: apt-get install tshark; tcptrace: apt-get
# install tcptrace; Argus: apt-get install argus-server.
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-2000000}
data=target/bench-data
mkdir -p "$data"
cargo build --release --quiet --bin sockscope --example gen
bin=target/release/sockscope

# best_of CMD...: prints "seconds max_rss_kb cpu_seconds" of the fastest of 3 runs (CPU: user + system,
# which shows how busy the cores were: with --jobs 2 on two cores, close to twice the wall time).
best_of() {
    local best="" line out
    out=$(mktemp)
    for _ in $(seq "${RUNS:-3}"); do
        /usr/bin/time -o "$out" -f "%e %M %U %S" "$@" > /dev/null 2>&1 || true
        line=$(tail -n 1 "$out" | awk '{ printf "%s %s %.2f", $1, $2, $3 + $4 }')
        if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$line; fi
    done
    rm -f "$out"
    echo "$best"
}

row() { # name packets bytes seconds rss_kb cpu_seconds [ratio_base_seconds]
    awk -v n="$1" -v p="$2" -v b="$3" -v s="$4" -v r="$5" -v c="$6" -v base="${7:-}" 'BEGIN {
        s = (s < 0.005) ? 0.005 : s;
        ratio = (base == "") ? "" : sprintf("%.1fx slower", s / base);
        printf "  %-26s %8.2f s %8.2f Mpps %8.0f MB/s %8.0f MB RSS %6.2f s CPU  %s\n", n, s, p / s / 1e6, b / s / 1e6, r / 1024, c, ratio }'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for profile in realistic tiny manyconn scan; do
    file=$data/$profile-$packets.pcap
    [ -f "$file" ] || target/release/examples/gen "$profile" "$packets" "$file"
    bytes=$(stat -c %s "$file")
    cat "$file" > /dev/null
    echo "$profile: $packets packets, $((bytes / 1000000)) MB, $((bytes / packets)) bytes/packet"
    read -r s1 m1 c1 <<< "$(best_of "$bin" conns --format jsonl --jobs 1 "$file")"
    row "sockscope --jobs 1" "$packets" "$bytes" "$s1" "$m1" "$c1"
    read -r s2 m2 c2 <<< "$(best_of "$bin" conns --format jsonl --jobs 2 "$file")"
    row "sockscope --jobs 2" "$packets" "$bytes" "$s2" "$m2" "$c2"
    awk -v a="$s1" -v b="$s2" 'BEGIN { printf "  %-26s %.2fx\n", "two threads vs one", a / b }'
    read -r s m c <<< "$(best_of cat "$file")"
    row "cat (I/O floor)" "$packets" "$bytes" "$s" "$m" "$c"
    read -r se m c <<< "$(best_of "$bin" conns --format jsonl --jobs 1 --order end "$file")"
    row "sockscope --order end" "$packets" "$bytes" "$se" "$m" "$c"
    read -r s0 m c <<< "$(best_of "$bin" check --jobs 1 --min-connections 0 "$file")"
    row "analysis only (check)" "$packets" "$bytes" "$s0" "$m" "$c"
    read -r s m c <<< "$(best_of "$bin" summary "$file")"
    row "summary (--jobs 2)" "$packets" "$bytes" "$s" "$m" "$c"
    # Output's share: end order costs formatting and writing only; the default first-seen order
    # adds holding finished records back behind older connections still open.
    awk -v a="$se" -v b="$s0" 'BEGIN { printf "  %-26s %.0f%% of the run\n", "writing JSON lines", (a - b) / a * 100 }'
    awk -v a="$s1" -v b="$s0" 'BEGIN { printf "  %-26s %.0f%% of the run\n", "same, first-seen order", (a - b) / a * 100 }'
    # The table as a person reads it: streamed like JSON lines (memory bounded), and how soon
    # the first row shows when connections are printed as they end.
    read -r st mt ct <<< "$(best_of "$bin" conns --jobs 1 "$file")"
    row "table (piped, every column)" "$packets" "$bytes" "$st" "$mt" "$ct"
    first=$( { /usr/bin/time -f "%e" sh -c "\"$bin\" conns --jobs 1 --order end \"$file\" | head -2 > /dev/null" ; } 2>&1 | tail -n 1)
    awk -v s="$first" 'BEGIN { printf "  %-26s %8.2f s\n", "first table row, end order", s }'
    read -r s m c <<< "$(best_of "$bin" conns --jobs 1 -o "$data/bench-out.parquet" "$file")"
    row "parquet (-o FILE)" "$packets" "$bytes" "$s" "$m" "$c"
    py=${BENCH_PYTHON:-python3}
    if "$py" -c "import sockscope" 2> /dev/null; then
        read -r sp m c <<< "$(best_of "$py" -c "import sys, sockscope; sockscope.connections(sys.argv[1])" "$file")"
        row "python connections()" "$packets" "$bytes" "$sp" "$m" "$c"
        nf=${NFSTREAM_PYTHON:-$py}
        if "$nf" -c "import nfstream" 2> /dev/null; then
            read -r s m c <<< "$(RUNS=1 best_of "$nf" -c "import sys, nfstream; nfstream.NFStreamer(source=sys.argv[1], n_dissections=0).to_pandas()" "$file")"
            row "nfstream to_pandas()" "$packets" "$bytes" "$s" "$m" "$c" "$sp"
        fi
    fi
    if command -v tshark > /dev/null; then
        read -r s m c <<< "$(best_of tshark -n -q -r "$file" -z conv,tcp -z conv,udp)"
        row "tshark conv,tcp conv,udp" "$packets" "$bytes" "$s" "$m" "$c" "$s1"
    fi
    if command -v argus > /dev/null; then
        read -r s m c <<< "$(best_of argus -r "$file" -w /dev/null)"
        row "argus -r (vs --jobs 2)" "$packets" "$bytes" "$s" "$m" "$c" "$s2"
    fi
    if command -v tcptrace > /dev/null; then
        read -r s m c <<< "$(best_of tcptrace -n "$file")"
        row "tcptrace -n" "$packets" "$bytes" "$s" "$m" "$c" "$s1"
    fi
done
