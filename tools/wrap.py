#!/usr/bin/env python3
"""Wraps the frames of a real capture in another link layer, for link types no small public
capture shows: each output holds the input's frames unchanged inside the new headers, so that
sockscope must find the same connections in both (tests/link_layers.rs checks it).

    wrap.py ppi     IN.pcap(802.11) OUT.pcap   PPI (192) with an 802.11-Common field
    wrap.py avs     IN.pcap(802.11) OUT.pcap   AVS (163) capture headers
    wrap.py etag    IN.pcap(Ethernet) OUT.pcap an 802.1BR E-Tag after the MAC addresses
    wrap.py fcs     IN.pcap(Ethernet) OUT.pcapng each frame with its real CRC-32 FCS, the
                                               interface saying so (if_fcslen, 32 bits)

Standard library only; little-endian microsecond pcap in, as tcpdump writes on x86.
"""

import struct
import sys
import zlib

LINKTYPE_ETHERNET = 1
LINKTYPE_IEEE802_11 = 105
LINKTYPE_AVS = 163
LINKTYPE_PPI = 192


def read_pcap(path):
    raw = open(path, "rb").read()
    magic, _, _, _, _, snaplen, linktype = struct.unpack("<IHHiIII", raw[:24])
    if magic != 0xA1B2C3D4:
        sys.exit(f"{path}: not a little-endian microsecond pcap")
    frames, at = [], 24
    while at + 16 <= len(raw):
        sec, usec, caplen, origlen = struct.unpack("<IIII", raw[at:at + 16])
        frames.append((sec, usec, raw[at + 16:at + 16 + caplen], origlen - caplen))
        at += 16 + caplen
    return linktype & 0xFFFF, snaplen, frames


def write_pcap(path, linktype, frames):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for sec, usec, data, missing in frames:
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data) + missing) + data)
    open(path, "wb").write(b"".join(out))


def ppi(frame):
    # 802.11-Common (type 2, 20 bytes): TSF, flags (0: no FCS), rate, channel, FHSS, signal, noise.
    common = struct.pack("<QHHHHHbb", 0, 0, 0, 2437, 0x00A0, 0, -40, -90)
    field = struct.pack("<HH", 2, len(common)) + common
    return struct.pack("<BBHI", 0, 0, 8 + len(field), LINKTYPE_IEEE802_11) + field + frame


def avs(frame):
    # AVS capture header version 1, 64 bytes, big-endian (wlan-ng's p80211_caphdr).
    # version, length, MAC time, host time; PHY type, channel, data rate, antenna, priority, SSI
    # type, signal, noise, preamble, encoding.
    header = struct.pack(">IIQQIIIIIIiiII", 0x80211001, 64, 0, 0, 4, 6, 10, 0, 0, 1, -40, -90, 0, 0)
    assert len(header) == 64
    return header + frame


def etag(frame):
    # 802.1BR E-Tag: TPID 0x893F and six bytes (E-PCP/DEI, ingress and E-CID fields) before the type.
    return frame[:12] + struct.pack(">HHI", 0x893F, 0x2000, 0x00010002) + frame[12:]


def fcs(frame):
    return frame + struct.pack("<I", zlib.crc32(frame) & 0xFFFFFFFF)


def block(kind, body):
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def write_pcapng_with_fcs(path, frames):
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    # if_fcslen (option 13): the FCS length, in bits.
    options = struct.pack("<HHB", 13, 1, 32) + b"\0" * 3 + struct.pack("<HH", 0, 0)
    idb = block(1, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 262144) + options)
    epbs = []
    for sec, usec, data, missing in frames:
        ts = sec * 1_000_000 + usec
        epbs.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data) + missing) + data))
    open(path, "wb").write(shb + idb + b"".join(epbs))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    kind, src, dst = sys.argv[1:]
    linktype, _, frames = read_pcap(src)
    wanted = LINKTYPE_ETHERNET if kind in ("etag", "fcs") else LINKTYPE_IEEE802_11
    if linktype != wanted:
        sys.exit(f"{src}: link type {linktype}, {kind} wraps {wanted}")
    wrap = {"ppi": ppi, "avs": avs, "etag": etag, "fcs": fcs}[kind]
    wrapped = [(s, u, wrap(d), m) for s, u, d, m in frames]
    if kind == "fcs":
        if any(m for *_, m in frames):
            sys.exit(f"{src}: a frame the snap length cut has no FCS to add")
        write_pcapng_with_fcs(dst, wrapped)
    else:
        write_pcap(dst, {"ppi": LINKTYPE_PPI, "avs": LINKTYPE_AVS, "etag": LINKTYPE_ETHERNET}[kind], wrapped)


if __name__ == "__main__":
    main()
