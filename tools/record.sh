#!/usr/bin/env bash
# Record sockscope's sample captures from REAL loopback traffic.
#
# Usage (as root):   tools/record.sh [OUTDIR]      (default OUTDIR: samples/ beside tools/)
#
# Writes OUTDIR/teardowns.pcap, udp_and_reuse.pcapng, snaplen96.pcap.gz,
# ipv6.pcap, and regenerates OUTDIR/expected.json after checking every capture
# against the scenario table in traffic.py (`traffic.py verify`).
#
# Requirements (Debian/Ubuntu):
#   apt-get update && apt-get install -y tcpdump iproute2 nftables python3 gzip openssl
#   optional: apt-get install -y wireshark-common   # editcap (pcapng), capinfos
#             (without editcap, traffic.py converts pcap -> pcapng itself)
#   iptables works instead of nftables for the one DROP rule.
#
# How it works: each capture gets a fresh network namespace of its own
# (ip netns add sockscope-rec-*), whose private `lo` carries nothing but the
# traffic made by traffic.py, so fixed ports never collide with services on
# the host and no packet leaves the namespace.  tcpdump runs inside the
# namespace as `tcpdump -i lo -U -s SNAPLEN -w FILE`; traffic starts only after
# tcpdump reports "listening" (+0.5 s) and tcpdump is stopped with SIGINT
# 0.5 s after the traffic ends.  The unanswered-SYN scenario uses an nftables
# rule in that namespace that drops SYNs to tcp/9008.  Namespaces (and with
# them the rule) are deleted on exit, also on error.
#
# If network namespaces are not available (some containers), set
# SOCKSCOPE_HOST_LO=1 to record on the host's lo instead: tcpdump then gets a
# BPF filter limited to the sample ports, and the DROP rule goes into a
# temporary nftables table `sockscope_samples` (or an iptables rule) that is
# removed on exit.  The fixed ports must then be free on the host.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mkdir -p "${1:-$HERE/../samples}" && cd "${1:-$HERE/../samples}" && pwd)
TRAFFIC="$HERE/traffic.py"
HOST_LO=${SOCKSCOPE_HOST_LO:-0}

die() { echo "record.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (tcpdump, ip netns, nft)"
command -v tcpdump >/dev/null ||
    die "tcpdump not found: apt-get update && apt-get install -y tcpdump"
command -v python3 >/dev/null || die "python3 not found: apt-get install -y python3"
command -v ip >/dev/null || die "ip not found: apt-get install -y iproute2"
command -v gzip >/dev/null || die "gzip not found: apt-get install -y gzip"
if command -v nft >/dev/null; then FW=nft
elif command -v iptables >/dev/null; then FW=iptables
else die "need nft or iptables for the unanswered-SYN scenario: apt-get install -y nftables"
fi

WORK=$(mktemp -d /tmp/sockscope-rec.XXXXXX)
NS=""
NSLIST=()
TCPDUMP_PID=""
HOST_RULE=""

cleanup() {
    set +e
    if [ -n "$TCPDUMP_PID" ] && kill -0 "$TCPDUMP_PID" 2>/dev/null; then
        kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null
    fi
    for ns in "${NSLIST[@]}"; do ip netns del "$ns" 2>/dev/null; done
    case "$HOST_RULE" in
        nft) nft delete table inet sockscope_samples 2>/dev/null ;;
        iptables) iptables -D INPUT -i lo -p tcp --dport 9008 --syn -j DROP 2>/dev/null ;;
    esac
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ONLY="services ipv6" tools/record.sh records just those captures (no final check).
ONLY=${ONLY:-}
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# run CMD... inside the current capture namespace (or on the host)
run() {
    if [ "$HOST_LO" = 1 ]; then "$@"; else ip netns exec "$NS" "$@"; fi
}

new_ns() {
    [ "$HOST_LO" = 1 ] && return 0
    NS="sockscope-rec-$$-$1"
    ip netns add "$NS" || die "ip netns add failed; try SOCKSCOPE_HOST_LO=1 $0"
    NSLIST+=("$NS")
    ip -n "$NS" link set lo up
}

drop_ns() {
    [ "$HOST_LO" = 1 ] && return 0
    ip netns del "$NS"
}

# BPF filter: none inside a private namespace (we want to see any stray
# packet); the sample ports only when sharing the host's lo.
FILTER=()
if [ "$HOST_LO" = 1 ]; then
    FILTER=("(tcp or udp) and (portrange 9001-9011 or port 5300 or port 8081 or port 8096 or port 8086 or port 5306 or port 8080 or port 8443 or port 2222 or port 2525 or port 7777 or port 53 or port 123)")
fi

start_tcpdump() { # FILE SNAPLEN
    local log="$WORK/$(basename "$1").log"
    # started directly (not through run(), which would add a subshell between
    # us and tcpdump): $! must be tcpdump itself so that SIGINT reaches it.
    if [ "$HOST_LO" = 1 ]; then
        tcpdump -i lo -nn -U -Z root -s "$2" -w "$1" "${FILTER[@]}" 2>"$log" &
    else
        ip netns exec "$NS" tcpdump -i lo -nn -U -Z root -s "$2" -w "$1" 2>"$log" &
    fi
    TCPDUMP_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && break
        kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$log" >&2; die "tcpdump died"; }
        sleep 0.05
    done
    grep -q "listening on" "$log" || { cat "$log" >&2; die "tcpdump did not start"; }
    sleep 0.5
}

stop_tcpdump() { # FILE
    local log="$WORK/$(basename "$1").log"
    sleep 0.5
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=""
    sed 's/^/   tcpdump: /' "$log" >&2
    grep -q "^0 packets dropped by kernel" "$log" || die "tcpdump dropped packets"
}

block_syn_9008() {
    if [ "$FW" = nft ]; then
        run nft -f - <<'EOF'
table inet sockscope_samples {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 9008 tcp flags & (syn | ack) == syn drop
    }
}
EOF
    else
        run iptables -A INPUT -i lo -p tcp --dport 9008 --syn -j DROP
    fi
    [ "$HOST_LO" = 1 ] && HOST_RULE=$FW
    return 0
}

unblock_syn_9008() {
    if [ "$FW" = nft ]; then run nft delete table inet sockscope_samples
    else run iptables -D INPUT -i lo -p tcp --dport 9008 --syn -j DROP
    fi
    HOST_RULE=""
}

# --- 1. teardowns.pcap ------------------------------------------------------
if want teardowns; then
say "teardowns.pcap (scenarios a-k on ports 9001-9011)"
new_ns teardowns
block_syn_9008
F="$WORK/teardowns.pcap"
start_tcpdump "$F" 0
run python3 "$TRAFFIC" teardowns --ready-file "$WORK/ready" --release-file "$WORK/release" &
TPID=$!
for _ in $(seq 1200); do   # the scenarios before "i" take ~10 s
    [ -e "$WORK/ready" ] && break
    kill -0 "$TPID" 2>/dev/null || break
    sleep 0.05
done
[ -e "$WORK/ready" ] || { wait "$TPID" || true; die "traffic.py teardowns failed"; }
# scenario i: stop the capture while that connection is still open ...
stop_tcpdump "$F"
# ... and only then let traffic.py close it.
touch "$WORK/release"
wait "$TPID" || die "traffic.py teardowns failed"
unblock_syn_9008
drop_ns
cp "$F" "$OUT/teardowns.pcap"
fi

# --- 2. udp_and_reuse.pcapng --------------------------------------------------
if want udp_and_reuse; then
say "udp_and_reuse.pcapng (UDP 5300, TCP+UDP 8081)"
new_ns udp
F="$WORK/udp_and_reuse.pcap"
start_tcpdump "$F" 0
run python3 "$TRAFFIC" udp_and_reuse
stop_tcpdump "$F"
drop_ns
# tcpdump 4.99 / libpcap 1.10 can only write pcap, so convert.
rm -f "$OUT/udp_and_reuse.pcapng"
if command -v editcap >/dev/null; then
    editcap -F pcapng "$F" "$OUT/udp_and_reuse.pcapng"
else
    say "editcap not found (apt-get install -y wireshark-common); converting with traffic.py"
    python3 "$TRAFFIC" pcap2pcapng "$F" "$OUT/udp_and_reuse.pcapng"
fi
fi

# --- 3. snaplen96.pcap.gz -----------------------------------------------------
if want snaplen96; then
say "snaplen96.pcap.gz (TCP 8096, snaplen 96)"
new_ns snap
F="$WORK/snaplen96.pcap"
start_tcpdump "$F" 96
run python3 "$TRAFFIC" snaplen96
stop_tcpdump "$F"
drop_ns
gzip -9 -n -c "$F" > "$OUT/snaplen96.pcap.gz"
fi

# --- 4. ipv6.pcap -------------------------------------------------------------
if want ipv6; then
say "ipv6.pcap (TCP [::1]:8086, UDP [::1]:5306)"
new_ns v6
F="$WORK/ipv6.pcap"
start_tcpdump "$F" 0
run python3 "$TRAFFIC" ipv6
stop_tcpdump "$F"
drop_ns
cp "$F" "$OUT/ipv6.pcap"
fi

# --- 5. services.pcap ---------------------------------------------------------
if want services; then
say "services.pcap (HTTP 8080, TLS 8443, SSH 2222, SMTP 2525, TCP 7777, DNS 53, NTP 123)"
command -v openssl >/dev/null || die "openssl not found: apt-get install -y openssl"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
new_ns services
F="$WORK/services.pcap"
start_tcpdump "$F" 0
run python3 "$TRAFFIC" services --cert "$WORK/cert.pem" --key "$WORK/key.pem"
stop_tcpdump "$F"
drop_ns
cp "$F" "$OUT/services.pcap"
fi

[ -n "$ONLY" ] && { say "done (only: $ONLY)"; exit 0; }
chmod 644 "$OUT/teardowns.pcap" "$OUT/udp_and_reuse.pcapng" "$OUT/snaplen96.pcap.gz" "$OUT/ipv6.pcap" "$OUT/services.pcap"

# --- check and write expected.json --------------------------------------------
say "verifying captures against traffic.py SCENARIOS"
python3 "$TRAFFIC" verify "$OUT" --write || die "captures do not match the expected scenarios (see above)"
ls -l "$OUT"/teardowns.pcap "$OUT"/udp_and_reuse.pcapng "$OUT"/snaplen96.pcap.gz "$OUT"/ipv6.pcap >&2
say "done"
