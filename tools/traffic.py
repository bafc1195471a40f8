#!/usr/bin/env python3
"""Traffic generator and capture checker for sockscope's sample captures.

Standard library only.  Driven by tools/record.sh, which runs tcpdump on a
loopback interface and calls this script to produce the traffic:

    traffic.py teardowns [--ready-file F --release-file F]
    traffic.py udp_and_reuse
    traffic.py snaplen96
    traffic.py ipv6
    traffic.py services --cert PEM --key PEM
    traffic.py pcap2pcapng IN.pcap OUT.pcapng   (fallback when editcap is missing)
    traffic.py verify SAMPLES_DIR [--write]     (check captures, write expected.json)

Every scenario uses fixed server AND client ports (see SCENARIOS below and
samples/README.md), so the same socket pairs appear on every run; only timestamps,
sequence numbers and a few pure-ACK timings can change between runs.

The SCENARIOS table is the single source of truth for the expectations in
expected.json: `verify` parses the captures itself (a small independent
pcap/pcapng decoder, not sockscope), derives handshake / teardown / conn_state
for each connection, checks them against the table and, with --write,
records them together with the measured packet and byte counts.
"""

import argparse
import gzip
import json
import os
import socket
import struct
import sys
import threading
import time

V4 = "127.0.0.1"
V6 = "::1"

# Pause between scenarios, and the delay a peer waits before answering a FIN
# with its own FIN (long enough for the delayed ACK of the FIN to go out on
# its own, which is what makes a close "four_way" instead of "combined").
GAP = 0.3
PEER_CLOSE_DELAY = 0.3

# ---------------------------------------------------------------------------
# Expectations.  Keys are the capture file names; each TCP scenario is keyed by
# its server port.  Fields:
#   conn_state   Zeek conn_state (base/protocols/conn/main.zeek conn_state())
#   closed_first which endpoint sent the first FIN or RST: client/server/none
#   teardown     four_way | combined | simultaneous | half_close | rst |
#                fin_then_rst | null
#   handshake    complete | syn_only | syn_synack | rejected | not_seen
# "client" is always the originator (sender of the first SYN).
# ---------------------------------------------------------------------------
SCENARIOS = {
    "teardowns.pcap": {
        "tcp": {
            9001: dict(id="a", client_port=40001, connections=1,
                       desc="request/response, client closes first, server closes "
                            f"{PEER_CLOSE_DELAY}s later (four-way close)",
                       conn_state="SF", closed_first="client", teardown="four_way",
                       handshake="complete"),
            9002: dict(id="b", client_port=40002, connections=1,
                       desc="request/response, server closes first right after its "
                            f"response, client closes {PEER_CLOSE_DELAY}s later",
                       conn_state="SF", closed_first="server", teardown="four_way",
                       handshake="complete"),
            9003: dict(id="c", client_port=40003, connections=1,
                       desc="request/response, then the client aborts "
                            "(SO_LINGER 0 + close => RST)",
                       conn_state="RSTO", closed_first="client", teardown="rst",
                       handshake="complete"),
            9004: dict(id="d", client_port=40004, connections=1,
                       desc="request/response, then the server aborts "
                            "(SO_LINGER 0 + close => RST)",
                       conn_state="RSTR", closed_first="server", teardown="rst",
                       handshake="complete"),
            9005: dict(id="e", client_port=40005, connections=1,
                       desc="connect to a port with no listener: SYN answered by RST+ACK",
                       conn_state="REJ", closed_first="server", teardown="rst",
                       handshake="rejected"),
            9006: dict(id="f", client_port=40006, connections=1,
                       desc="half-close: client sends a request then shutdown(SHUT_WR); "
                            "server keeps sending 5 chunks for ~0.5s, then closes",
                       conn_state="SF", closed_first="client", teardown="half_close",
                       handshake="complete"),
            9007: dict(id="g", client_port=40007, connections=2,
                       desc="port reuse: the same client port 40007 connects twice to "
                            "the same listening socket; each time the server closes "
                            "first (TIME_WAIT stays on the server side)",
                       conn_state="SF", closed_first="server", teardown="four_way",
                       handshake="complete"),
            9008: dict(id="h", client_port=40008, connections=1,
                       desc="unanswered SYN: nftables drops SYNs to 9008; the client "
                            "gives up after 1.5s (initial SYN + one retransmission "
                            "of the same SYN after ~1s)",
                       conn_state="S0", closed_first="none", teardown="null",
                       handshake="syn_only"),
            9009: dict(id="i", client_port=40009, connections=1,
                       desc="still open: two request/response exchanges, capture "
                            "stopped before either side closes",
                       conn_state="S1", closed_first="none", teardown="null",
                       handshake="complete"),
            9010: dict(id="j", client_port=40010, connections=1,
                       desc="extra: client closes first and the server closes "
                            "immediately on EOF, so its FIN carries the ACK of the "
                            "client's FIN (three-packet close)",
                       conn_state="SF", closed_first="client", teardown="combined",
                       handshake="complete"),
            9011: dict(id="k", client_port=40011, connections=1,
                       desc="extra: server closes first (FIN) without reading; the "
                            "client then writes into the closed connection and the "
                            "server's kernel answers with RST",
                       conn_state="RSTR", closed_first="server", teardown="fin_then_rst",
                       handshake="complete"),
        },
        "udp": {},
    },
    "udp_and_reuse.pcapng": {
        "tcp": {
            8081: dict(id="tcp8081", client_port=[42001, 42002, 42003, 42004, 42005],
                       connections=5,
                       desc="one listening socket, 5 clients connected at the same time; "
                            "round-robin request/response; clients close first, server "
                            f"closes {PEER_CLOSE_DELAY}s after each EOF",
                       conn_state="SF", closed_first="client", teardown="four_way",
                       handshake="complete"),
        },
        "udp": {
            5300: dict(id="udp5300", client_port=[41001, 41002, 41003], flows=3,
                       desc="UDP echo, 3 clients x 3 request/response pairs, interleaved",
                       conn_state="SF"),
            8081: dict(id="udp8081", client_port=[42001, 42002], flows=2,
                       desc="UDP echo on the SAME port number as the TCP server, from "
                            "the same client port numbers as two TCP clients, while "
                            "those TCP connections are open (2 x 2 pairs)",
                       conn_state="SF"),
        },
    },
    "snaplen96.pcap.gz": {
        "tcp": {
            8096: dict(id="snap", client_port=[44001, 44002], connections=2,
                       desc="recorded with -s 96: 400-byte request, 3000-byte response "
                            f"(two writes), client closes first, server {PEER_CLOSE_DELAY}s "
                            "later",
                       conn_state="SF", closed_first="client", teardown="four_way",
                       handshake="complete"),
        },
        "udp": {},
    },
    "ipv6.pcap": {
        "tcp": {
            8086: dict(id="v6tcp", client_port=45001, connections=1,
                       desc="TCP over ::1, request/response, client closes first",
                       conn_state="SF", closed_first="client", teardown="four_way",
                       handshake="complete"),
        },
        "udp": {
            5306: dict(id="v6udp", client_port=45002, flows=1,
                       desc="UDP echo over ::1, 2 request/response pairs",
                       conn_state="SF"),
        },
    },
}


# ---------------------------------------------------------------------------
# Socket helpers
# ---------------------------------------------------------------------------

def log(*a):
    print("[traffic]", *a, file=sys.stderr, flush=True)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listener(port, host=V4, backlog=16):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(backlog)
    return s


def client(port, cport, host=V4, timeout=5.0):
    """Connect from the fixed source port `cport`."""
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, cport))
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_until_eof(s):
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk


def abort(s):
    """close() with SO_LINGER {on, 0}: the kernel sends RST instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def payload(tag, n):
    """Deterministic payload of exactly n bytes."""
    line = (tag + " ").encode()
    return (line * (n // len(line) + 1))[:n]


REQ = 64    # request size used by most scenarios
RESP = 200  # response size used by most scenarios


def run_server(lsock, handler, count=1):
    """Accept `count` connections on lsock, run handler(conn) for each in a thread."""
    def main():
        threads = []
        for _ in range(count):
            conn, _ = lsock.accept()
            t = threading.Thread(target=guarded, args=(handler, conn), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    t = threading.Thread(target=main, daemon=True)
    t.start()
    return t


def guarded(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - a scenario thread must not kill the run
        log(f"server handler {fn.__name__}: {type(e).__name__}: {e}")


def finish(*threads, timeout=10):
    for t in threads:
        t.join(timeout)
        if t.is_alive():
            raise RuntimeError("server thread did not finish")
    time.sleep(GAP)


# ---------------------------------------------------------------------------
# teardowns.pcap scenarios
# ---------------------------------------------------------------------------

def sc_a_client_closes_first():
    ls = listener(9001)

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-a", RESP))
        recv_until_eof(c)             # client's FIN
        time.sleep(PEER_CLOSE_DELAY)  # let our ACK of that FIN go out alone
        c.close()

    t = run_server(ls, srv)
    s = client(9001, 40001)
    s.sendall(payload("req-a", REQ))
    recv_exact(s, RESP)
    time.sleep(0.1)
    s.close()
    finish(t)
    ls.close()


def sc_b_server_closes_first():
    ls = listener(9002)

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-b", RESP))
        c.close()

    t = run_server(ls, srv)
    s = client(9002, 40002)
    s.sendall(payload("req-b", REQ))
    data = recv_until_eof(s)
    assert len(data) == RESP
    time.sleep(PEER_CLOSE_DELAY)
    s.close()
    finish(t)
    ls.close()


def sc_c_client_rst():
    ls = listener(9003)

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-c", RESP))
        try:
            recv_until_eof(c)
        except ConnectionResetError:
            pass
        c.close()  # already reset: sends nothing

    t = run_server(ls, srv)
    s = client(9003, 40003)
    s.sendall(payload("req-c", REQ))
    recv_exact(s, RESP)
    time.sleep(GAP)  # the ACK of the response goes out first
    abort(s)
    finish(t)
    ls.close()


def sc_d_server_rst():
    ls = listener(9004)

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-d", RESP))
        time.sleep(GAP)
        abort(c)

    t = run_server(ls, srv)
    s = client(9004, 40004)
    s.sendall(payload("req-d", REQ))
    recv_exact(s, RESP)
    try:
        recv_until_eof(s)
    except ConnectionResetError:
        pass
    s.close()  # already reset: sends nothing
    finish(t)
    ls.close()


def sc_e_refused():
    try:
        s = client(9005, 40005)
    except ConnectionRefusedError:
        pass
    else:
        s.close()
        raise RuntimeError("port 9005 unexpectedly accepted a connection")
    time.sleep(GAP)


def sc_f_half_close():
    ls = listener(9006)

    def srv(c):
        req = recv_until_eof(c)  # request followed by the client's FIN
        assert len(req) == REQ
        for i in range(5):
            time.sleep(0.1)
            c.sendall(payload(f"after-fin-{i}", RESP))
        c.close()

    t = run_server(ls, srv)
    s = client(9006, 40006)
    s.sendall(payload("req-f", REQ))
    s.shutdown(socket.SHUT_WR)
    data = recv_until_eof(s)
    assert len(data) == 5 * RESP, len(data)
    s.close()  # the client side is already fully closed; nothing is sent
    finish(t)
    ls.close()


def sc_g_port_reuse():
    ls = listener(9007)

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-g", RESP))
        c.close()  # server closes first: TIME_WAIT lands on the server side

    t = run_server(ls, srv, count=2)
    for n in range(2):
        s = client(9007, 40007)
        s.sendall(payload(f"req-g{n}", REQ))
        data = recv_until_eof(s)
        assert len(data) == RESP
        time.sleep(PEER_CLOSE_DELAY)
        s.close()
        time.sleep(GAP)
    finish(t)
    ls.close()


def sc_h_unanswered_syn():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((V4, 40008))
    s.setblocking(False)
    err = s.connect_ex((V4, 9008))
    assert err == 115, err  # EINPROGRESS
    # Initial SYN at 0s and one retransmission at ~1s (initial RTO 1s).  Don't
    # wait longer: the next retransmission comes at ~3s on older kernels but at
    # ~2s on kernels with net.ipv4.tcp_syn_linear_timeouts (6.17+).
    time.sleep(1.5)
    s.close()  # closing a SYN_SENT socket sends nothing
    time.sleep(GAP)


def sc_j_combined_close():
    ls = listener(9010)

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-j", RESP))
        recv_until_eof(c)
        c.close()  # immediately: FIN piggybacks the (delayed) ACK of the client FIN

    t = run_server(ls, srv)
    s = client(9010, 40010)
    s.sendall(payload("req-j", REQ))
    recv_exact(s, RESP)
    time.sleep(0.1)
    s.close()
    finish(t)
    ls.close()


def sc_k_fin_then_rst():
    ls = listener(9011)
    ready = threading.Event()

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-k", RESP))
        c.close()  # FIN; socket fully closed, later data gets a RST
        ready.set()

    t = run_server(ls, srv)
    s = client(9011, 40011)
    s.sendall(payload("req-k", REQ))
    data = recv_until_eof(s)  # response then the server's FIN
    assert len(data) == RESP
    ready.wait(5)
    time.sleep(0.1)
    s.sendall(payload("late-k", REQ))  # into a closed socket -> RST from server
    time.sleep(GAP)
    s.close()  # after the RST nothing more is sent
    finish(t)
    ls.close()


def sc_i_still_open(ready_file, release_file):
    ls = listener(9009)
    release = threading.Event()

    def srv(c):
        for n in range(2):
            recv_exact(c, REQ)
            c.sendall(payload(f"resp-i{n}", RESP))
        release.wait(120)
        c.close()

    t = run_server(ls, srv)
    s = client(9009, 40009)
    for n in range(2):
        s.sendall(payload(f"req-i{n}", REQ))
        recv_exact(s, RESP)
        time.sleep(0.1)
    time.sleep(0.5)  # pending delayed ACKs go out before the capture stops
    if ready_file:
        with open(ready_file, "w") as f:
            f.write("ready\n")
        log("still-open connection ready; waiting for", release_file)
        deadline = time.time() + 120
        while not os.path.exists(release_file):
            if time.time() > deadline:
                raise RuntimeError("release file never appeared")
            time.sleep(0.05)
    release.set()
    s.close()
    t.join(5)
    ls.close()


def run_teardowns(args):
    steps = [
        ("a", sc_a_client_closes_first),
        ("b", sc_b_server_closes_first),
        ("c", sc_c_client_rst),
        ("d", sc_d_server_rst),
        ("e", sc_e_refused),
        ("f", sc_f_half_close),
        ("g", sc_g_port_reuse),
        ("h", sc_h_unanswered_syn),
        ("j", sc_j_combined_close),
        ("k", sc_k_fin_then_rst),
    ]
    for name, fn in steps:
        log("scenario", name, fn.__name__)
        fn()
    log("scenario i sc_i_still_open")
    sc_i_still_open(args.ready_file, args.release_file)


# ---------------------------------------------------------------------------
# udp_and_reuse.pcapng
# ---------------------------------------------------------------------------

def udp_echo_server(port, expected, host=V4):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.bind((host, port))

    def main():
        for _ in range(expected):
            data, addr = s.recvfrom(65536)
            s.sendto(b"echo:" + data, addr)
        s.close()
    t = threading.Thread(target=main, daemon=True)
    t.start()
    return t


def udp_client(cport, host=V4):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, cport))
    s.settimeout(5)
    return s


def udp_exchange(s, port, data, host=V4):
    s.sendto(data, (host, port))
    reply, _ = s.recvfrom(65536)
    assert reply == b"echo:" + data


def run_udp_and_reuse(_args):
    # 1. UDP echo on 5300, three clients, interleaved round-robin.
    log("UDP 5300 echo, 3 clients")
    t = udp_echo_server(5300, expected=9)
    clients = [udp_client(p) for p in (41001, 41002, 41003)]
    for rnd in range(3):
        for i, c in enumerate(clients):
            udp_exchange(c, 5300, payload(f"dns-ish c{i} r{rnd}", 40 + 10 * i))
            time.sleep(0.02)
    for c in clients:
        c.close()
    finish(t)

    # 2. TCP 8081: five clients connected at the same time.
    log("TCP 8081, 5 concurrent clients (+ UDP 8081 while they are open)")
    ls = listener(8081)

    def srv(c):
        while True:
            req = c.recv(65536)
            if not req:
                break
            c.sendall(b"ok:" + req)
        time.sleep(PEER_CLOSE_DELAY)
        c.close()

    t = run_server(ls, srv, count=5)
    ports = [42001, 42002, 42003, 42004, 42005]
    socks = []
    for p in ports:
        socks.append(client(8081, p))
        time.sleep(0.02)
    for rnd in range(2):
        for i, s in enumerate(socks):
            msg = payload(f"tcp c{i} r{rnd}", 50)
            s.sendall(msg)
            assert recv_exact(s, 3 + len(msg)) == b"ok:" + msg
            time.sleep(0.02)

    # 3. UDP 8081 while the TCP 8081 connections are still open, from the same
    #    client port numbers as the first two TCP clients.
    ut = udp_echo_server(8081, expected=4)
    uclients = [udp_client(p) for p in (42001, 42002)]
    for rnd in range(2):
        for i, c in enumerate(uclients):
            udp_exchange(c, 8081, payload(f"udp c{i} r{rnd}", 30))
            time.sleep(0.02)
    for c in uclients:
        c.close()
    finish(ut)

    time.sleep(0.2)
    for s in socks:
        s.close()
        time.sleep(0.02)
    finish(t)
    ls.close()


# ---------------------------------------------------------------------------
# snaplen96.pcap.gz
# ---------------------------------------------------------------------------

def run_snaplen96(_args):
    ls = listener(8096)

    def srv(c):
        recv_exact(c, 400)
        c.sendall(payload("big-response-part1", 1500))
        time.sleep(0.05)
        c.sendall(payload("big-response-part2", 1500))
        recv_until_eof(c)
        time.sleep(PEER_CLOSE_DELAY)
        c.close()

    for cport in (44001, 44002):
        log("TCP 8096 from", cport)
        t = run_server(ls, srv)
        s = client(8096, cport)
        s.sendall(payload(f"big-request-from-{cport}", 400))
        recv_exact(s, 3000)
        time.sleep(0.1)
        s.close()
        finish(t)
    ls.close()


# ---------------------------------------------------------------------------
# ipv6.pcap
# ---------------------------------------------------------------------------

def run_ipv6(_args):
    log("TCP [::1]:8086")
    ls = listener(8086, host=V6)

    def srv(c):
        recv_exact(c, REQ)
        c.sendall(payload("resp-v6", RESP))
        recv_until_eof(c)
        time.sleep(PEER_CLOSE_DELAY)
        c.close()

    t = run_server(ls, srv)
    s = client(8086, 45001, host=V6)
    s.sendall(payload("req-v6", REQ))
    recv_exact(s, RESP)
    time.sleep(0.1)
    s.close()
    finish(t)
    ls.close()

    log("UDP [::1]:5306")
    t = udp_echo_server(5306, expected=2, host=V6)
    c = udp_client(45002, host=V6)
    for rnd in range(2):
        udp_exchange(c, 5306, payload(f"v6 udp r{rnd}", 48), host=V6)
        time.sleep(0.02)
    c.close()
    finish(t)


# ---------------------------------------------------------------------------
# services.pcap: application protocols by their first bytes, and the DNS and
# NTP role rules.  Real sockets on loopback; the protocol messages are the
# protocols' own first messages (HTTP via http.server/urllib, TLS via the ssl
# module, the rest written out here).
# ---------------------------------------------------------------------------

def dns_message(response):
    """A DNS message for example.org A: a query, or its response (QR set)."""
    flags = 0x8180 if response else 0x0100
    header = struct.pack("!HHHHHH", 0x5353, flags, 1, 1 if response else 0, 0, 0)
    question = b"\x07example\x03org\x00" + struct.pack("!HH", 1, 1)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([93, 184, 215, 14])
    return header + question + (answer if response else b"")


def ntp_message(mode):
    """A 48-byte NTPv4 packet in `mode` (3 client, 4 server)."""
    return bytes([(4 << 3) | mode, 2 if mode == 4 else 0, 6, 0xec]) + bytes(44)


def udp_pair(a, b, port, messages):
    """Sends `messages` ((from_a, bytes) ...) between a:port and b:port, in order."""
    sa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sa.bind((a, port))
    sb.bind((b, port))
    for from_a, data in messages:
        src, dst, dst_addr = (sa, sb, b) if from_a else (sb, sa, a)
        src.sendto(data, (dst_addr, port))
        dst.settimeout(5)
        dst.recvfrom(2048)
        time.sleep(0.02)
    sa.close()
    sb.close()


def banner_exchange(port, cport, server_first, client_first):
    """A TCP connection: the server sends `server_first`, the client `client_first`."""
    ls = listener(port)

    def srv(c):
        c.sendall(server_first)
        recv_exact(c, len(client_first))
        time.sleep(0.05)
        c.close()

    t = run_server(ls, srv)
    s = client(port, cport)
    recv_exact(s, len(server_first))
    s.sendall(client_first)
    recv_until_eof(s)
    s.close()
    finish(t)
    ls.close()


def run_services(args):
    import http.server
    import ssl
    import urllib.request

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body>sockscope sample</body></html>\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    log("HTTP 127.0.0.1:8080")
    httpd = http.server.HTTPServer((V4, 8080), Page)
    t = threading.Thread(target=httpd.handle_request)
    t.start()
    # The client port is the kernel's: urllib does not bind one.
    urllib.request.urlopen(f"http://{V4}:8080/", timeout=5).read()
    finish(t)
    httpd.server_close()
    time.sleep(GAP)

    log("TLS 127.0.0.1:8443")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    ls = listener(8443)

    def tls_srv(c):
        with ctx.wrap_socket(c, server_side=True) as tc:
            tc.recv(64)
            tc.sendall(b"pong")

    t = run_server(ls, tls_srv)
    cctx = ssl.create_default_context()
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    with cctx.wrap_socket(client(8443, 46001), server_hostname="localhost") as tc:
        tc.sendall(b"ping")
        tc.recv(64)
    finish(t)
    ls.close()
    time.sleep(GAP)

    log("SSH banners 127.0.0.1:2222, SMTP 127.0.0.1:2525, unknown 127.0.0.1:7777")
    banner_exchange(2222, 46002, b"SSH-2.0-sockscope_sample\r\n", b"SSH-2.0-sockscope_client\r\n")
    time.sleep(GAP)
    banner_exchange(2525, 46003, b"220 mail.example.org ESMTP\r\n", b"EHLO client.example.org\r\n")
    time.sleep(GAP)
    banner_exchange(7777, 46004, b"\x00\x01hello", b"\x02\x03world")
    time.sleep(GAP)

    log("DNS 127.0.0.1:53 <-> 127.0.0.2:53, a response first")
    udp_pair(V4, "127.0.0.2", 53, [(True, dns_message(True)), (False, dns_message(False)),
                                   (True, dns_message(True))])
    time.sleep(GAP)
    log("NTP 127.0.0.1:123 <-> 127.0.0.2:123, server mode first")
    udp_pair(V4, "127.0.0.2", 123, [(True, ntp_message(4)), (False, ntp_message(3)),
                                    (True, ntp_message(4))])
    log("services done")


# ---------------------------------------------------------------------------
# Minimal capture reader (pcap, pcapng, optionally gzip-compressed)
# ---------------------------------------------------------------------------

class Packet:
    __slots__ = ("ts", "caplen", "origlen", "proto", "src", "dst", "sport", "dport",
                 "flags", "seq", "ack", "plen", "truncated")


def read_capture(path):
    """Return (format, [(linktype, snaplen)], [(ts, linktype, caplen, origlen, data)])."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                 b"\xa1\xb2\x3c\x4d"):
        return read_pcap(raw)
    if magic == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(raw)
    raise ValueError(f"{path}: unknown capture format {magic.hex()}")


def read_pcap(raw):
    m = raw[:4]
    e = "<" if m in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = m in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    _, _, _, _, _, snaplen, linktype = struct.unpack(e + "IHHiIII", raw[:24])
    linktype &= 0x0FFFFFFF
    pkts, off = [], 24
    while off + 16 <= len(raw):
        sec, frac, caplen, origlen = struct.unpack(e + "IIII", raw[off:off + 16])
        off += 16
        ts = sec + frac / (1e9 if nano else 1e6)
        pkts.append((ts, linktype, caplen, origlen, raw[off:off + caplen]))
        off += caplen
    return "pcap", [(linktype, snaplen)], pkts


def read_pcapng(raw):
    pkts, ifaces, off, e = [], [], 0, "<"
    while off + 12 <= len(raw):
        btype = struct.unpack(e + "I", raw[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            e = "<" if raw[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        btype, blen = struct.unpack(e + "II", raw[off:off + 8])
        body = raw[off + 8:off + blen - 4]
        if btype == 1:  # IDB
            linktype, _, snaplen = struct.unpack(e + "HHI", body[:8])
            tsres = 1e-6
            o = 8
            while o + 4 <= len(body):
                code, ln = struct.unpack(e + "HH", body[o:o + 4])
                if code == 0:
                    break
                if code == 9:
                    v = body[o + 4]
                    tsres = 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
                o += 4 + ((ln + 3) & ~3)
            ifaces.append((linktype, snaplen, tsres))
        elif btype == 6:  # EPB
            iid, hi, lo, caplen, origlen = struct.unpack(e + "IIIII", body[:20])
            lt, _, tsres = ifaces[iid]
            pkts.append((((hi << 32) | lo) * tsres, lt, caplen, origlen,
                         body[20:20 + caplen]))
        elif btype == 3:  # SPB
            origlen = struct.unpack(e + "I", body[:4])[0]
            lt, snap, _ = ifaces[0]
            caplen = min(origlen, snap or origlen)
            pkts.append((0.0, lt, caplen, origlen, body[4:4 + caplen]))
        off += blen
    return "pcapng", [(lt, sn) for lt, sn, _ in ifaces], pkts


def decode(ts, linktype, caplen, origlen, data):
    """Decode Ethernet/raw IPv4/IPv6 + TCP/UDP headers. Returns Packet or None."""
    off = 0
    if linktype == 1:  # Ethernet
        etype = struct.unpack("!H", data[12:14])[0]
        off = 14
        if etype == 0x8100:
            etype = struct.unpack("!H", data[16:18])[0]
            off = 18
    elif linktype in (101, 228, 229):
        etype = 0x0800 if data[0] >> 4 == 4 else 0x86DD
    else:
        return None
    p = Packet()
    p.ts, p.caplen, p.origlen = ts, caplen, origlen
    p.truncated = caplen < origlen
    if etype == 0x0800:
        ihl = (data[off] & 0x0F) * 4
        total = struct.unpack("!H", data[off + 2:off + 4])[0]
        proto = data[off + 9]
        p.src = socket.inet_ntop(socket.AF_INET, data[off + 12:off + 16])
        p.dst = socket.inet_ntop(socket.AF_INET, data[off + 16:off + 20])
        l4, l4len = off + ihl, total - ihl
    elif etype == 0x86DD:
        plen = struct.unpack("!H", data[off + 4:off + 6])[0]
        proto = data[off + 6]
        p.src = socket.inet_ntop(socket.AF_INET6, data[off + 8:off + 24])
        p.dst = socket.inet_ntop(socket.AF_INET6, data[off + 24:off + 40])
        l4, l4len = off + 40, plen  # no extension headers in these samples
    else:
        return None
    if proto == 6:
        p.proto = "tcp"
        p.sport, p.dport, p.seq, p.ack = struct.unpack("!HHII", data[l4:l4 + 12])
        doff = (data[l4 + 12] >> 4) * 4
        p.flags = data[l4 + 13]
        p.plen = l4len - doff
    elif proto == 17:
        p.proto = "udp"
        p.sport, p.dport = struct.unpack("!HH", data[l4:l4 + 4])
        p.flags = p.seq = p.ack = 0
        p.plen = l4len - 8
    else:
        return None
    return p


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp_connections(pkts):
    """Group TCP packets into connections; a new SYN (no ACK) with a different
    ISN on a socket pair whose previous connection was closed starts a new one."""
    conns, current = [], {}
    for p in pkts:
        if p.proto != "tcp":
            continue
        key = frozenset([(p.src, p.sport), (p.dst, p.dport)])
        c = current.get(key)
        is_syn = p.flags & SYN and not p.flags & ACK
        if c is not None and is_syn and p.seq != c["isn"] and c["closed"]:
            c = None
        if c is None:
            c = dict(pkts=[], isn=p.seq if is_syn else None, closed=False,
                     client=(p.src, p.sport) if is_syn or not p.flags & ACK
                     else (p.dst, p.dport))
            conns.append(c)
            current[key] = c
        c["pkts"].append(p)
        fin_dirs = {(q.src, q.sport) for q in c["pkts"] if q.flags & FIN}
        if p.flags & RST or len(fin_dirs) == 2:
            c["closed"] = True
    return conns


def classify(c):
    """Derive handshake / closed_first / teardown / conn_state for one connection."""
    cl = c["client"]
    pk = c["pkts"]
    frm = lambda p: "client" if (p.src, p.sport) == cl else "server"  # noqa: E731
    syn = any(p.flags & SYN and not p.flags & ACK and frm(p) == "client" for p in pk)
    synack = [p for p in pk if p.flags & SYN and p.flags & ACK and frm(p) == "server"]
    rsts = [p for p in pk if p.flags & RST]
    fins = [p for p in pk if p.flags & FIN]
    third_ack = bool(synack) and any(
        frm(p) == "client" and p.flags & ACK and not p.flags & SYN
        and p.ack == (synack[0].seq + 1) & 0xFFFFFFFF for p in pk)
    if not syn:
        handshake = "not_seen"
    elif synack and third_ack:
        handshake = "complete"
    elif synack:
        handshake = "syn_synack"
    elif any(frm(p) == "server" for p in rsts):
        handshake = "rejected"
    else:
        handshake = "syn_only"

    enders = [p for p in pk if p.flags & (FIN | RST)]
    closed_first = frm(enders[0]) if enders else "none"

    if not enders:
        teardown = "null"
    elif enders[0].flags & RST:
        teardown = "rst"
    elif rsts:
        teardown = "fin_then_rst"
    else:
        a_fin = enders[0]
        a = frm(a_fin)
        fin_ack = (a_fin.seq + a_fin.plen + 1) & 0xFFFFFFFF
        after = pk[pk.index(a_fin) + 1:]
        b_fins = [p for p in after if frm(p) != a and p.flags & FIN]
        b_data_after = any(frm(p) != a and p.plen > 0 for p in after)
        if b_data_after:
            teardown = "half_close"
        elif not b_fins:
            teardown = "one_fin"  # not produced by any sample
        else:
            b_fin = b_fins[0]
            acked_before = any(frm(p) != a and p.flags & ACK and p.ack == fin_ack
                               for p in after[:after.index(b_fin)])
            if not (b_fin.flags & ACK and b_fin.ack == fin_ack):
                teardown = "simultaneous"
            elif acked_before:
                teardown = "four_way"
            else:
                teardown = "combined"

    # Zeek's conn_state() simplified to the endpoint states these samples reach.
    o_rst = any(frm(p) == "client" for p in rsts)
    r_rst = any(frm(p) == "server" for p in rsts)
    o_fin = any(frm(p) == "client" for p in fins)
    r_fin = any(frm(p) == "server" for p in fins)
    if r_rst:
        conn_state = "REJ" if not synack else "RSTR"
    elif o_rst:
        conn_state = "RSTO" if synack else "RSTOS0"
    elif o_fin and r_fin:
        conn_state = "SF"
    elif o_fin:
        conn_state = "S2"
    elif r_fin:
        conn_state = "S3"
    elif syn and not synack and len({frm(p) for p in pk}) == 1:
        conn_state = "S0"
    elif handshake == "complete":
        conn_state = "S1"
    else:
        conn_state = "OTH"

    def count(side):
        ps = [p for p in pk if frm(p) == side]
        return len(ps), sum(p.plen for p in ps)

    cp, cb = count("client")
    sp, sb = count("server")
    return dict(client_port=cl[1], handshake=handshake, closed_first=closed_first,
                teardown=teardown, conn_state=conn_state, packets=len(pk),
                orig_packets=cp, resp_packets=sp, orig_payload_bytes=cb,
                resp_payload_bytes=sb,
                syn_packets=sum(1 for p in pk if p.flags & SYN and not p.flags & ACK))


def udp_flows(pkts):
    flows, order = {}, []
    for p in pkts:
        if p.proto != "udp":
            continue
        key = frozenset([(p.src, p.sport), (p.dst, p.dport)])
        if key not in flows:
            flows[key] = dict(client=(p.src, p.sport), server=(p.dst, p.dport), pkts=[])
            order.append(key)
        flows[key]["pkts"].append(p)
    out = []
    for k in order:
        f = flows[k]
        o = [p for p in f["pkts"] if (p.src, p.sport) == f["client"]]
        r = [p for p in f["pkts"] if (p.src, p.sport) != f["client"]]
        out.append(dict(client_port=f["client"][1], server_port=f["server"][1],
                        packets=len(f["pkts"]), orig_packets=len(o), resp_packets=len(r),
                        orig_payload_bytes=sum(p.plen for p in o),
                        resp_payload_bytes=sum(p.plen for p in r),
                        conn_state="SF" if o and r else ("S0" if o else "SHR")))
    return out


def server_port_of(c):
    p = c["pkts"][0]
    return p.dport if (p.src, p.sport) == c["client"] else p.sport


def verify(args):
    d = args.dir
    problems = []
    result = {
        "_comment": "Generated by tools/traffic.py verify from the captures in this "
                    "directory. Expectations (conn_state, closed_first, teardown, "
                    "handshake) come from traffic.py SCENARIOS and were checked against "
                    "the packets; packet/byte counts are measured. 'client' = originator "
                    "(sender of the first SYN / first datagram).",
        "recorded_utc": None,  # filled from the first packet's timestamp
        "kernel_at_verify": os.uname().release,
        "files": {},
    }
    for fname, spec in SCENARIOS.items():
        path = os.path.join(d, fname)
        if not os.path.exists(path):
            problems.append(f"{fname}: missing")
            continue
        fmt, ifaces, raw = read_capture(path)
        pkts = [decode(*r) for r in raw]
        undecoded = sum(1 for p in pkts if p is None)
        pkts = [p for p in pkts if p is not None]
        conns = tcp_connections(pkts)
        flows = udp_flows(pkts)
        info = dict(
            format=fmt,
            gzip=fname.endswith(".gz"),
            linktype=ifaces[0][0] if ifaces else None,
            snaplen=ifaces[0][1] if ifaces else None,
            file_size=os.path.getsize(path),
            packets=len(raw),
            tcp_packets=sum(1 for p in pkts if p.proto == "tcp"),
            udp_packets=sum(1 for p in pkts if p.proto == "udp"),
            other_packets=undecoded,
            truncated_packets=sum(1 for p in pkts if p.truncated),
            tcp_connections=len(conns),
            udp_flows=len(flows),
            tcp={},
            udp={},
        )
        if undecoded:
            problems.append(f"{fname}: {undecoded} packets that are not TCP/UDP over IP")
        by_port = {}
        for c in conns:
            by_port.setdefault(server_port_of(c), []).append(classify(c))
        for port, exp in spec["tcp"].items():
            got = by_port.pop(port, [])
            cps = exp["client_port"] if isinstance(exp["client_port"], list) else [exp["client_port"]]
            if len(got) != exp["connections"]:
                problems.append(f"{fname} tcp/{port}: {len(got)} connections, "
                                f"expected {exp['connections']}")
            for g in got:
                if g["client_port"] not in cps:
                    problems.append(f"{fname} tcp/{port}: unexpected client port "
                                    f"{g['client_port']}")
                for k in ("conn_state", "closed_first", "teardown", "handshake"):
                    if g[k] != exp[k]:
                        problems.append(f"{fname} tcp/{port} from {g['client_port']}: "
                                        f"{k} is {g[k]}, expected {exp[k]}")
            entry = dict(scenario=exp["id"], server_port=port, client_ports=cps,
                         description=exp["desc"], connections=len(got),
                         conn_state=exp["conn_state"], closed_first=exp["closed_first"],
                         teardown=exp["teardown"], handshake=exp["handshake"],
                         packets=sum(g["packets"] for g in got),
                         per_connection=[{k: g[k] for k in (
                             "client_port", "packets", "orig_packets", "resp_packets",
                             "orig_payload_bytes", "resp_payload_bytes", "syn_packets")}
                             for g in got])
            info["tcp"][str(port)] = entry
        for port in by_port:
            problems.append(f"{fname}: unexpected TCP connection(s) on port {port}")
        fl_by_port = {}
        for f in flows:
            fl_by_port.setdefault(f["server_port"], []).append(f)
        for port, exp in spec["udp"].items():
            got = fl_by_port.pop(port, [])
            if len(got) != exp["flows"]:
                problems.append(f"{fname} udp/{port}: {len(got)} flows, expected "
                                f"{exp['flows']}")
            for g in got:
                if g["conn_state"] != exp["conn_state"]:
                    problems.append(f"{fname} udp/{port}: conn_state {g['conn_state']}")
            cps = exp["client_port"] if isinstance(exp["client_port"], list) else [exp["client_port"]]
            info["udp"][str(port)] = (dict(
                scenario=exp["id"], server_port=port, client_ports=cps,
                description=exp["desc"], flows=len(got), conn_state=exp["conn_state"],
                packets=sum(g["packets"] for g in got),
                per_flow=[{k: g[k] for k in ("client_port", "packets", "orig_packets",
                                             "resp_packets", "orig_payload_bytes",
                                             "resp_payload_bytes")} for g in got]))
        for port in fl_by_port:
            problems.append(f"{fname}: unexpected UDP flow(s) on port {port}")
        if raw and result["recorded_utc"] is None:
            result["recorded_utc"] = time.strftime("%Y-%m-%d %H:%M:%S",
                                                   time.gmtime(raw[0][0]))
        result["files"][fname] = info
        print(f"{fname}: {fmt}, {len(raw)} packets, {len(conns)} TCP connections, "
              f"{len(flows)} UDP flows, {info['truncated_packets']} truncated, "
              f"{info['file_size']} bytes")
        for e in info["tcp"].values():
            print(f"  tcp/{e['server_port']:<5} {e['scenario']:<8} x{e['connections']} "
                  f"{e['packets']:>3} pkts  {e['handshake']:<9} {e['teardown']:<12} "
                  f"first={e['closed_first']:<6} {e['conn_state']}")
        for e in info["udp"].values():
            print(f"  udp/{e['server_port']:<5} {e['scenario']:<8} x{e['flows']} "
                  f"{e['packets']:>3} pkts  {e['conn_state']}")
    if problems:
        print("PROBLEMS:", file=sys.stderr)
        for p in problems:
            print("  -", p, file=sys.stderr)
    if args.write:
        if problems:
            print("not writing expected.json because of the problems above",
                  file=sys.stderr)
        else:
            out = os.path.join(d, "expected.json")
            with open(out, "w") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
            print("wrote", out)
    return 1 if problems else 0


# ---------------------------------------------------------------------------
# pcap -> pcapng (fallback when editcap is not installed)
# ---------------------------------------------------------------------------

def pcap2pcapng(args):
    fmt, ifaces, pkts = read_capture(args.input)
    if fmt != "pcap":
        raise SystemExit("input is not a pcap file")
    linktype, snaplen = ifaces[0]

    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    def opt(code, val):
        return struct.pack("<HH", code, len(val)) + val + b"\0" * (-len(val) % 4)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                 + opt(4, b"sockscope tools/traffic.py pcap2pcapng") + opt(0, b"")),
           block(1, struct.pack("<HHI", linktype, 0, snaplen)
                 + opt(2, b"lo") + opt(9, b"\x06") + opt(0, b""))]
    for ts, _, caplen, origlen, data in pkts:
        us = int(round(ts * 1e6))
        out.append(block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF,
                                        caplen, origlen) + data))
    with open(args.output, "wb") as f:
        f.write(b"".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("teardowns")
    t.add_argument("--ready-file")
    t.add_argument("--release-file")
    t.set_defaults(fn=run_teardowns)
    sub.add_parser("udp_and_reuse").set_defaults(fn=run_udp_and_reuse)
    sub.add_parser("snaplen96").set_defaults(fn=run_snaplen96)
    sub.add_parser("ipv6").set_defaults(fn=run_ipv6)
    sv = sub.add_parser("services")
    sv.add_argument("--cert", required=True)
    sv.add_argument("--key", required=True)
    sv.set_defaults(fn=run_services)
    c = sub.add_parser("pcap2pcapng")
    c.add_argument("input")
    c.add_argument("output")
    c.set_defaults(fn=pcap2pcapng)
    v = sub.add_parser("verify")
    v.add_argument("dir")
    v.add_argument("--write", action="store_true",
                   help="write DIR/expected.json if everything matches")
    v.set_defaults(fn=verify)
    args = ap.parse_args()
    sys.exit(args.fn(args) or 0)


if __name__ == "__main__":
    main()
