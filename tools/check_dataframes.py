#!/usr/bin/env python3
"""Reads sockscope's machine outputs with DuckDB, pandas and polars, each with default settings,
and checks that every column loads as the README says (the analyst's workflow, for real).

    pip install duckdb pandas polars pyarrow
    python3 tools/check_dataframes.py BINARY WORKDIR CAPTURE...

Writes `conns` as JSON lines, CSV and Parquet (the format from the file name), reads each with
each library, and runs the README's DuckDB query exactly as written (its SQL, from README.md)
over a `--per-file` output. Exits non-zero, saying what disagreed, on the first problem.
"""
import os
import re
import subprocess
import sys

import duckdb
import pandas
import polars

binary, work, captures = sys.argv[1], sys.argv[2], sys.argv[3:]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.makedirs(work, exist_ok=True)


def run(*args):
    done = subprocess.run([binary, *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"sockscope {' '.join(args)}: exit {done.returncode}: {done.stderr}")


def check(what, ok):
    if not ok:
        sys.exit(f"failed: {what}")
    print(f"ok: {what}")


paths = {ext: os.path.join(work, f"conns.{ext}") for ext in ("jsonl", "csv", "parquet")}
for path in paths.values():
    run("conns", "-o", path, *captures)
rows = sum(1 for line in open(paths["jsonl"]) if line.strip())
check(f"{rows} connections written", rows > 0)

for ext, path in paths.items():
    if ext == "jsonl":
        frames = [pandas.read_json(path, lines=True), polars.read_ndjson(path)]
        n = duckdb.sql(f"SELECT count(*) FROM read_json_auto('{path}')").fetchall()[0][0]
    elif ext == "csv":
        frames = [pandas.read_csv(path), polars.read_csv(path)]
        n = duckdb.sql(f"SELECT count(*) FROM read_csv('{path}')").fetchall()[0][0]
    else:
        frames = [pandas.read_parquet(path), polars.read_parquet(path)]
        n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
    check(f"{ext}: pandas, polars and DuckDB read {rows} rows", [len(f) for f in frames] + [n] == [rows] * 3)

parquet = paths["parquet"]
types = {r[0]: r[1] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{parquet}')").fetchall()}
check("parquet ts is a UTC timestamp in DuckDB", types["ts"] == "TIMESTAMP WITH TIME ZONE")
# Parquet has no duration type of microsecond precision: DuckDB reads the microseconds as a number,
# Arrow readers (polars, pandas) the Arrow duration stored beside them.
check("parquet duration is microseconds in DuckDB", types["duration"] == "BIGINT")
check("parquet tunnel_parents is a list in DuckDB", types["tunnel_parents"] == "UBIGINT[]")
pl = polars.read_parquet(parquet)
check("parquet ts is a UTC datetime in polars", str(pl.schema["ts"]) == "Datetime(time_unit='us', time_zone='UTC')")
check("parquet tunnel_parents is a list in polars", str(pl.schema["tunnel_parents"]) == "List(UInt64)")
check("parquet duration is a duration in polars", str(pl.schema["duration"]) == "Duration(time_unit='us')")
pd = pandas.read_parquet(parquet)
check("parquet ts is a UTC datetime in pandas", str(pd["ts"].dtype).startswith("datetime64") and "UTC" in str(pd["ts"].dtype))
check("parquet duration is a timedelta in pandas", str(pd["duration"].dtype).startswith("timedelta64"))
check("csv tunnel_parents is text in polars", polars.read_csv(paths["csv"]).schema["tunnel_parents"] == polars.String)
ids = [
    list(pandas.read_json(paths["jsonl"], lines=True)["community_id"]),
    list(pandas.read_csv(paths["csv"])["community_id"]),
    list(pd["community_id"]),
]
check("community_id is one text in every format", ids[0] == ids[1] == ids[2] and all(i.startswith("1:") for i in ids[0]))

# The README's per-file recipe, its query run as written.
readme = open(os.path.join(root, "README.md")).read()
sql = re.search(r'^duckdb -c "(.*)"$', readme, re.M).group(1)
per_file = os.path.join(work, "per-file")
os.makedirs(per_file, exist_ok=True)
run("conns", "--per-file", "--format", "jsonl", "-o", os.path.join(per_file, "out"), *captures)
written = 0
for folder, _, names in os.walk(per_file):
    written += sum(1 for n in names if n.endswith(".jsonl") for line in open(os.path.join(folder, n)) if line.strip())
os.chdir(per_file)
by_state = duckdb.sql(sql).fetchall()
check(f"the README's DuckDB query counts every connection: {by_state}", sum(n for _, n in by_state) == written > 0)
