"""`iter_batches` holds memory flat: streaming a capture of over a million connections grows
the process by a small part of what the whole table takes, which `connections` does hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import generate

MEASURE = """
import json, sys, sockscope

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

path, how = sys.argv[1], sys.argv[2]
options = dict(tcp_timeout=1, udp_timeout=1)
if how == "stream":
    seen, rows, nbytes = [], 0, 0
    for batch in sockscope.iter_batches(path, batch_size=8192, **options):
        rows += batch.num_rows
        nbytes += batch.nbytes
        seen.append(rss())
    print(json.dumps({"rows": rows, "nbytes": nbytes, "quarter": seen[len(seen) // 4], "peak": max(seen)}))
else:
    table = sockscope.connections(path, **options)
    print(json.dumps({"rows": table.num_rows, "nbytes": table.nbytes, "peak": rss()}))
"""


def measure(path: Path, how: str) -> dict:
    run = subprocess.run([sys.executable, "-c", MEASURE, str(path), how], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_iter_batches_holds_memory_flat(tmp_path: Path):
    capture = tmp_path / "manyconn.pcap"
    # Short connections, ended after a second of silence: over a million in 220 MB.
    generate("manyconn", 2_000_000, capture)
    stream = measure(capture, "stream")
    table = measure(capture, "table")
    assert stream["rows"] == table["rows"] > 1_000_000
    assert stream["nbytes"] > 500_000_000
    # From the first quarter of the batches to the end, the process grows by far less than
    # the batches it handed out ...
    assert stream["peak"] - stream["quarter"] < stream["nbytes"] / 8, stream
    # ... and stays far below a process holding the whole table.
    assert stream["peak"] + table["nbytes"] / 2 < table["peak"], (stream, table)
