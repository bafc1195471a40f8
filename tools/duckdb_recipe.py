#!/usr/bin/env python3
"""The README's "many captures" recipe, run for real: sockscope per capture file, then DuckDB.

    pip install duckdb
    python3 tools/duckdb_recipe.py [CAPTURE_DIR] [OUT_DIR]

Runs `sockscope conns --per-file --format jsonl -o OUT_DIR CAPTURE_DIR` (one JSON-lines file per
capture, named after it), then queries all of them at once with DuckDB and checks the totals
against sockscope's own per-file output. Exits non-zero if anything disagrees.
"""
import glob
import json
import os
import subprocess
import sys

import duckdb

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
captures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "samples")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "target", "duckdb-recipe")
binary = os.path.join(root, "target", "release", "sockscope")
if not os.path.exists(binary):
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=root, check=True)

os.makedirs(out, exist_ok=True)
for old in glob.glob(os.path.join(out, "*.jsonl")):
    os.remove(old)
run = subprocess.run([binary, "conns", "--per-file", "--format", "jsonl", "-o", out, captures])
if run.returncode not in (0, 2):  # 2: some input was not readable (reported, the rest is written)
    sys.exit(f"sockscope failed with exit {run.returncode}")

files = sorted(glob.glob(os.path.join(out, "*.jsonl")))
expected = sum(1 for f in files for line in open(f) if line.strip())
expected_rej = sum(1 for f in files for line in open(f) if line.strip() and json.loads(line)["conn_state"] == "REJ")

con = duckdb.connect()
# One table over every per-file output; filename says which capture a row came from.
con.execute(f"""
    CREATE VIEW conns AS
    SELECT * FROM read_json_auto('{out}/*.jsonl', filename = true, union_by_name = true, format = 'newline_delimited')
""")
total, = con.execute("SELECT count(*) FROM conns").fetchone()
rej, = con.execute("SELECT count(*) FROM conns WHERE conn_state = 'REJ'").fetchone()
print(f"{len(files)} per-file outputs, {total} connections")
for row in con.execute("""
    SELECT proto, conn_state, count(*) AS n, sum(orig_bytes + resp_bytes) AS bytes
    FROM conns GROUP BY ALL ORDER BY n DESC LIMIT 10
""").fetchall():
    print("  ", *row)
print(con.execute("""
    SELECT resp.ip AS server, resp.port AS port, count(*) AS conns,
           round(median(handshake.rtt) * 1000, 3) AS median_rtt_ms
    FROM conns WHERE proto = 'tcp' AND handshake.state = 'complete'
    GROUP BY ALL ORDER BY conns DESC LIMIT 5
""").fetchall())
if (total, rej) != (expected, expected_rej):
    sys.exit(f"DuckDB saw {total} connections ({rej} REJ); the files hold {expected} ({expected_rej} REJ)")
print("ok: DuckDB and sockscope agree")
