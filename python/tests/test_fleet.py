"""Many captures: the per-file function, the joining of connections cut at file boundaries,
and the Ray Data recipe, against the command line."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

import sockscope
from conftest import REPO, all_captures, cli, cli_jsonl, split_pcap
from sockscope import fleet

# Where a cut cannot be joined from the records alone: an IP datagram whose fragments fall on
# both sides of the cut, and tunnels recognized only from packets on the other side.
UNJOINABLE = {
    "zeek_ipv4_fragmented-1.pcap",
    "zeek_ipv4_fragmented-syn.pcap",
    "zeek_ipv6-fragmented-dns.pcap",
    "zeek_tunnels_Teredo.pcap",
    "zeek_tunnels_gtp_gtp1_gn_normal_incl_fragmentation.pcap",
    "zeek_tunnels_gtp_gtp2_different_udp_port.pcap",
}


# What each connection is and did: its sockets, packets and payload as carried (TCP sizes from
# sequence numbers do not add up across a cut when a stray RST's number is far off), state.
def cli_view(records: list[dict]) -> list[tuple]:
    def payload(r, side):
        return r["data"][f"{side}_payload_bytes"] if r["data"] else r[f"{side}_bytes"]

    return sorted(
        (r["proto"], r["orig"]["ip"], r["orig"]["port"], r["resp"]["ip"], r["resp"]["port"],
         r["orig_pkts"], r["resp_pkts"], payload(r, "orig"), payload(r, "resp"), r["conn_state"])
        for r in records
    )


def table_view(table: pa.Table) -> list[tuple]:
    def payload(r, side):
        carried = r[f"{side}_payload_bytes"]
        return r[f"{side}_bytes"] if carried is None else carried

    return sorted(
        (r["proto"], r["orig_ip"], r["orig_port"], r["resp_ip"], r["resp_port"],
         r["orig_pkts"], r["resp_pkts"], payload(r, "orig"), payload(r, "resp"), r["conn_state"])
        for r in table.to_pylist()
    )


def pieces(capture: Path, out: Path, at: float) -> pa.Table:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sockscope.CaptureWarning)
        return pa.concat_tables([fleet.per_file(p) for p in split_pcap(capture, out, at)])


def test_per_file_flags_the_cuts(tmp_path: Path):
    capture = REPO / "samples" / "teardowns.pcap"
    table = pieces(capture, tmp_path, 0.5)
    assert table.schema.equals(fleet.schema())
    first, second = (table.filter(pc.equal(table["capture"], f"teardowns.{i}.pcap")) for i in (0, 1))
    # Still open when the first piece ended, and seen again at the start of the second.
    assert first.filter(first["cut_end"]).num_rows > 0
    assert second.filter(second["cut_start"]).num_rows > 0
    # Counted twice until joined.
    assert table.num_rows > len(cli_jsonl(capture)) == fleet.stitch(table).num_rows


@pytest.mark.parametrize("at", [0.3, 0.5, 0.8])
@pytest.mark.parametrize(
    "capture", [c for c in all_captures() if c.suffix == ".pcap" and c.name not in UNJOINABLE], ids=lambda p: p.name
)
def test_stitch_makes_a_split_capture_whole(capture: Path, at: float, tmp_path: Path):
    run = cli("conns", "--format", "jsonl", capture)
    if run.returncode != 0:
        pytest.skip("not a readable capture")
    table = pieces(capture, tmp_path, at)
    joined = fleet.stitch(table)
    assert table_view(joined) == cli_view(cli_jsonl(capture))


def test_ray_recipe_counts_what_the_command_line_counts(tmp_path: Path):
    ray = pytest.importorskip("ray")
    captures = tmp_path / "captures"
    captures.mkdir()
    for sample in ("teardowns.pcap", "udp_and_reuse.pcapng", "ipv6.pcap", "services.pcap"):
        shutil.copy(REPO / "samples" / sample, captures / sample)
    # A capture rotated in two, whose connections across the cut are joined afterwards.
    split_pcap(REPO / "samples" / "teardowns.pcap", captures, 0.5)
    paths = sorted(captures.iterdir())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        fleet.ray_to_parquet(paths, tmp_path / "conns")
    finally:
        ray.shutdown()
    dataset = ds.dataset(tmp_path / "conns", format="parquet", partitioning="hive")
    table = dataset.to_table()
    for path in paths:
        mine = table.filter(pc.equal(table["capture"], path.name))
        assert table_view(mine) == cli_view(cli_jsonl(path)), path.name
        assert mine.num_rows == len(cli_jsonl(path))
    rotated = table.filter(pc.is_in(table["capture"], pa.array(["teardowns.0.pcap", "teardowns.1.pcap"])))
    whole = fleet.stitch(rotated)
    assert table_view(whole) == cli_view(cli_jsonl(REPO / "samples" / "teardowns.pcap"))

    import duckdb

    counts = duckdb.sql(
        f"SELECT capture, count(*) AS n FROM read_parquet('{tmp_path / 'conns'}/**/*.parquet', hive_partitioning=true)"
        " GROUP BY capture ORDER BY capture"
    ).fetchall()
    assert counts == [(p.name, len(cli_jsonl(p))) for p in paths]


def test_map_in_arrow_takes_a_path_column():
    paths = [str(REPO / "samples" / n) for n in ("teardowns.pcap", "ipv6.pcap")]
    out = list(fleet.map_in_arrow([pa.record_batch({"path": paths})]))
    table = pa.Table.from_batches(out, schema=fleet.spark_schema())
    assert table.num_rows == sum(len(cli_jsonl(p)) for p in paths)
    assert set(table["capture"].to_pylist()) == {"teardowns.pcap", "ipv6.pcap"}


def test_spark_map_in_arrow_counts_what_the_command_line_counts():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a JVM")
    from pyspark.sql import SparkSession
    from pyspark.sql.pandas.types import from_arrow_schema

    captures = [REPO / "samples" / n for n in ("teardowns.pcap", "udp_and_reuse.pcapng", "ipv6.pcap")]
    # Spark's Python workers are this Python, which has the package (on a cluster: every node's).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        paths = spark.createDataFrame([(str(p),) for p in captures], "path string")
        conns = paths.mapInArrow(fleet.map_in_arrow, from_arrow_schema(fleet.spark_schema()))
        conns.createOrReplaceTempView("conns")
        rows = spark.sql("SELECT capture, conn_state, count(*) AS n FROM conns GROUP BY capture, conn_state").collect()
    finally:
        spark.stop()
    got = sorted((r["capture"], r["conn_state"], r["n"]) for r in rows)
    expected = {}
    for path in captures:
        for record in cli_jsonl(path):
            k = (path.name, record["conn_state"])
            expected[k] = expected.get(k, 0) + 1
    assert got == sorted((c, s, n) for (c, s), n in expected.items())


def test_spark_schema_has_no_unsigned_types():
    types = [f.type for f in fleet.spark_schema()]
    assert len(types) == len(fleet.schema())
    assert not any(pa.types.is_unsigned_integer(t) for t in types)
    batch = next(fleet.map_in_arrow([pa.record_batch({"path": [str(REPO / "samples" / "teardowns.pcap")]})]))
    assert batch.schema.equals(fleet.spark_schema())
    assert batch.column("orig_pkts").to_pylist() == [r["orig_pkts"] for r in cli_jsonl(REPO / "samples" / "teardowns.pcap")]
