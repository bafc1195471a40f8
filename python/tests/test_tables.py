"""The tables equal what the command line prints for the same captures: the Parquet output
cell for cell, and the JSONL records field by field."""

from __future__ import annotations

import io
import json
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import sockscope
from conftest import REPO, SHARED, all_captures, cli, cli_jsonl, sample_captures

TEARDOWNS = REPO / "samples" / "teardowns.pcap"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


def micros(seconds: float) -> int:
    return round(seconds * 1e6)


def test_the_shared_corpus_is_compared_when_present():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: only the samples are compared")
    assert len(all_captures()) > len(sample_captures()) + 50


@pytest.mark.parametrize("capture", all_captures(), ids=lambda p: p.name)
def test_table_equals_the_cli(capture: Path, tmp_path: Path):
    run = cli("conns", "--format", "jsonl", capture)
    if run.returncode == 2:
        with pytest.raises(sockscope.CaptureError) as raised:
            sockscope.connections(capture)
        assert f"sockscope: {raised.value}" in run.stderr.splitlines()
        return
    assert run.returncode == 0, run.stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = sockscope.connections(capture)
    cli_warnings = [line for line in run.stderr.splitlines() if line.startswith("sockscope: warning: ")]
    assert [f"sockscope: warning: {w.message}" for w in caught] == cli_warnings

    records = [json.loads(line) for line in run.stdout.splitlines()]
    rows = table.to_pylist()
    assert len(rows) == len(records)
    for row, rec in zip(rows, records):
        assert row["id"] == rec["id"]
        assert (row["proto"], row["orig_ip"], row["orig_port"]) == (rec["proto"], rec["orig"]["ip"], rec["orig"]["port"])
        assert (row["resp_ip"], row["resp_port"]) == (rec["resp"]["ip"], rec["resp"]["port"])
        assert (row["conn_state"], row["history"], row["end"]) == (rec["conn_state"], rec["history"], rec["end"])
        for field in ("orig_pkts", "resp_pkts", "orig_bytes", "resp_bytes", "orig_ip_bytes", "resp_ip_bytes"):
            assert row[field] == rec[field], field
        # Whole microseconds, as in the Parquet output: exact for microsecond captures, within
        # one for finer ones (the JSON's seconds are a float).
        assert abs((row["ts"] - EPOCH) // MICROSECOND - micros(rec["ts"])) <= 1
        assert abs(row["duration"] // MICROSECOND - micros(rec["duration"])) <= 1
        assert row["community_id"] == rec["community_id"]

    # Cell for cell the Parquet file the command line writes, schema included.
    out = tmp_path / "conns.parquet"
    assert cli("conns", capture, "-o", out).returncode == 0
    written = pq.read_table(out)
    assert written.schema.equals(sockscope.schema(), check_metadata=False)
    assert table.equals(written)


def test_schema_is_the_parquet_outputs(tmp_path: Path):
    out = tmp_path / "conns.parquet"
    assert cli("conns", TEARDOWNS, "-o", out).returncode == 0
    assert pq.read_schema(out).equals(sockscope.schema(), check_metadata=False)
    assert sockscope.connections(TEARDOWNS).schema.equals(sockscope.schema())


def test_several_inputs_are_one_timeline():
    captures = [REPO / "samples" / "teardowns.pcap", REPO / "samples" / "ipv6.pcap"]
    table = sockscope.connections(captures)
    assert table.column("id").to_pylist() == [r["id"] for r in cli_jsonl(*captures)]


def test_options_are_the_command_lines():
    udp = REPO / "samples" / "udp_and_reuse.pcapng"
    for kwargs, args in [
        ({"filter": "udp"}, ["--filter", "udp"]),
        ({"filter": ["tcp", "state=SF"]}, ["--filter", "tcp", "--filter", "state=SF"]),
        ({"udp_timeout": 0.5}, ["--udp-timeout", "0.5"]),
        ({"tcp_timeout": 1}, ["--tcp-timeout", "1"]),
        ({"max_connections": 2}, ["--max-connections", "2"]),
        ({"no_decap": True}, ["--no-decap"]),
        ({"community_id_seed": 7}, ["--community-id-seed", "7"]),
        ({"order": "end"}, ["--order", "end"]),
        ({"jobs": 2}, ["--jobs", "2"]),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sockscope.CaptureWarning)
            table = sockscope.connections(udp, **kwargs)
        records = [json.loads(line) for line in cli("conns", "--format", "jsonl", *args, udp).stdout.splitlines()]
        assert table.column("id").to_pylist() == [r["id"] for r in records], kwargs
        assert table.column("conn_state").to_pylist() == [r["conn_state"] for r in records], kwargs
        assert table.column("community_id").to_pylist() == [r["community_id"] for r in records], kwargs


def test_evictions_are_a_warning_as_on_the_command_line():
    udp = REPO / "samples" / "udp_and_reuse.pcapng"
    with pytest.warns(sockscope.CaptureWarning, match=r"ended early to stay within --max-connections"):
        sockscope.connections(udp, max_connections=1)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="invalid filter 'state=XX'"):
        sockscope.connections(TEARDOWNS, filter="state=XX")
    with pytest.raises(ValueError, match="tcp_timeout"):
        sockscope.connections(TEARDOWNS, tcp_timeout=-1)
    with pytest.raises(ValueError, match="order"):
        sockscope.iter_batches(TEARDOWNS, order="last")
    with pytest.raises(ValueError, match="batch_size"):
        sockscope.iter_batches(TEARDOWNS, batch_size=0)
    with pytest.raises(ValueError, match="max_connections"):
        sockscope.sockets(TEARDOWNS, max_connections=0)
    with pytest.raises(ValueError, match="paths"):
        sockscope.connections([])


def test_unreadable_inputs_raise_the_command_lines_message(tmp_path: Path):
    not_a_capture = tmp_path / "notes.pcap"
    not_a_capture.write_text("hello\n")
    missing = tmp_path / "missing.pcap"
    for path in (not_a_capture, missing):
        run = cli("conns", path)
        assert run.returncode == 2
        for call in (sockscope.connections, sockscope.sockets, sockscope.summary):
            with pytest.raises(sockscope.CaptureError) as raised:
                call(path)
            assert run.stderr.strip() == f"sockscope: {raised.value}"
            assert isinstance(raised.value, sockscope.Error)


def test_batches_come_before_the_error_of_a_later_input(tmp_path: Path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 64)
    seen = []
    with pytest.raises(sockscope.CaptureError, match="bad.pcap"):
        for batch in sockscope.iter_batches([TEARDOWNS, bad], batch_size=5):
            seen.append(batch.num_rows)
    assert sum(seen) == len(cli_jsonl(TEARDOWNS))


def test_iter_batches_cut_the_table_in_batches():
    whole = sockscope.connections(TEARDOWNS)
    batches = list(sockscope.iter_batches(TEARDOWNS, batch_size=5))
    assert [b.num_rows for b in batches] == [5, 5, 2]
    assert all(b.schema.equals(sockscope.schema()) for b in batches)
    assert pa.Table.from_batches(batches).equals(whole)


def test_sockets_are_the_cli_inventory():
    for capture in sample_captures():
        run = cli("sockets", "--format", "csv", capture)
        assert run.returncode == 0, run.stderr
        expected = pacsv.read_csv(io.BytesIO(run.stdout.encode())).to_pylist()
        got = sockscope.sockets(capture).to_pylist()
        assert got == expected, capture.name


def test_summary_is_the_cli_summary():
    for capture in sample_captures():
        run = cli("summary", "--format", "json", capture)
        assert run.returncode == 0, run.stderr
        assert sockscope.summary(capture) == json.loads(run.stdout), capture.name


def test_pandas_and_polars_take_the_table():
    import pandas as pd
    import polars as pl

    table = sockscope.connections(REPO / "samples" / "udp_and_reuse.pcapng")
    frame = table.to_pandas()
    assert len(frame) == table.num_rows
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert pd.api.types.is_timedelta64_dtype(frame["duration"])
    polars = pl.from_arrow(table)
    assert polars.height == table.num_rows
    assert polars.schema["ts"] == pl.Datetime("us", "UTC")
    assert polars.filter(pl.col("proto") == "udp").height == sum(1 for p in frame["proto"] if p == "udp")
