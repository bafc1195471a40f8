"""Many captures on many machines: one task per capture file, on an existing engine (Ray Data,
Spark), and the connections that span two rotated files joined afterwards.

Each file is analyzed on its own (``per_file``), so tasks need nothing from each other. A
connection still open when a file ended is flagged ``cut_end``; one that may have begun in
the file before (its first packet within the inactivity timeout of the file's first packet)
is flagged ``cut_start``. ``stitch`` joins each ``cut_end`` record with the
``cut_start`` record of the same socket pair in the next capture, so that the result counts
such a connection once, as reading all the files as one timeline does.

With Ray Data (``pip install "ray[data]"``; the same code runs on a laptop or a cluster)::

    from sockscope import fleet
    fleet.ray_to_parquet(["/captures/a.pcap", "/captures/b.pcap"], "/out/conns")
    # /out/conns/capture=a.pcap/..., /out/conns/capture=b.pcap/...

and with Spark, on a DataFrame with a ``path`` column::

    from pyspark.sql.pandas.types import from_arrow_schema
    conns = paths.mapInArrow(fleet.map_in_arrow, from_arrow_schema(fleet.spark_schema()))
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Iterable, Iterator, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc

from . import _settings, _sockscope, _warn
from . import schema as conn_schema

__all__ = ["map_in_arrow", "per_file", "ray_to_parquet", "schema", "spark_schema", "stitch"]

PathLike = Union[str, "os.PathLike[str]"]

# Counters that add up over the pieces of one connection, per direction.
_SUMMED = [
    "pkts",
    "bytes",
    "ip_bytes",
    "payload_bytes",
    "rexmit_pkts",
    "rexmit_bytes",
    "zero_windows",
    "dup_acks",
    "out_of_order",
    "missed_bytes",
]


def schema() -> pa.Schema:
    """The schema of ``per_file``'s tables: the connection columns, then ``capture`` (the
    file's name), ``cut_start`` and ``cut_end``."""
    return conn_schema().append(pa.field("capture", pa.string(), False)).append(
        pa.field("cut_start", pa.bool_(), False)
    ).append(pa.field("cut_end", pa.bool_(), False))


def per_file(
    path: PathLike,
    *,
    filter: Union[str, Sequence[str], None] = None,
    tcp_timeout: float = 300.0,
    udp_timeout: float = 60.0,
    max_connections: int = 10_000_000,
    no_decap: bool = False,
    jobs: int = 1,
    community_id_seed: int = 0,
) -> pa.Table:
    """The connections of one capture file, flagged where the file's edges may have cut them
    (see the module's description). Takes the options of ``sockscope.connections``; ``jobs``
    is 1, as an engine runs one task per core."""
    path = os.fspath(path)
    settings = _settings(filter, tcp_timeout, udp_timeout, max_connections, no_decap, jobs, community_id_seed)
    batches = _sockscope.batches([path], settings, 65536)
    table = pa.Table.from_batches(list(batches), schema=conn_schema())
    _warn(batches.warnings())
    span = batches.span()
    rows = table.num_rows
    if span is None or rows == 0:
        cut_start = pa.array([False] * rows, pa.bool_())
    else:
        first = pa.scalar(span[0] // 1000, pa.timestamp("us", "UTC"))
        timeout = pc.if_else(
            pc.equal(table["proto"], "tcp"),
            pa.scalar(round(tcp_timeout * 1e6), pa.duration("us")),
            pa.scalar(round(udp_timeout * 1e6), pa.duration("us")),
        )
        cut_start = pc.less_equal(pc.subtract(table["ts"], first), timeout)
    cut_end = pc.equal(table["end"], "capture_end")
    table = table.append_column(schema().field("capture"), pa.array([os.path.basename(path)] * rows, pa.string()))
    table = table.append_column(schema().field("cut_start"), cut_start)
    return table.append_column(schema().field("cut_end"), cut_end).cast(schema())


# Spark has no unsigned integers: each becomes the signed type that holds all its values
# (a 64-bit counter past 2^63 would not fit, which no capture reaches).
_SIGNED = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64(), pa.uint64(): pa.int64()}


def _signed(t: pa.DataType) -> pa.DataType:
    if pa.types.is_list(t):
        return pa.list_(_signed(t.value_type))
    return _SIGNED.get(t, t)


def spark_schema() -> pa.Schema:
    """``schema()`` in the types Spark takes: unsigned integers as wider signed ones. Spark's
    own schema for ``mapInArrow`` is ``pyspark.sql.pandas.types.from_arrow_schema`` of it."""
    return pa.schema([pa.field(f.name, _signed(f.type), f.nullable) for f in schema()])


def map_in_arrow(batches: Iterable[pa.RecordBatch], **options: Any) -> Iterator[pa.RecordBatch]:
    """For Spark's ``mapInArrow``: record batches with a ``path`` column in, the ``per_file``
    connections of each path out, in ``spark_schema()``. ``options`` are ``per_file``'s."""
    for batch in batches:
        for path in batch.column("path").to_pylist():
            yield from per_file(path, **options).cast(spark_schema()).to_batches()


def ray_to_parquet(paths: Sequence[PathLike], out: PathLike, **options: Any) -> None:
    """Analyzes each capture in a Ray task of its own and writes a Parquet dataset in ``out``,
    partitioned by capture (``out/capture=NAME/``). Connect to a cluster first with
    ``ray.init(address=...)``; without it Ray starts a local one. ``options`` are
    ``per_file``'s."""
    import ray

    def analyze(rows: pa.Table) -> pa.Table:
        return pa.concat_tables([per_file(p, **options) for p in rows["path"].to_pylist()])

    files = ray.data.from_items([{"path": os.fspath(p)} for p in paths], override_num_blocks=max(len(paths), 1))
    conns = files.map_batches(analyze, batch_size=1, batch_format="pyarrow", zero_copy_batch=True)
    conns.write_parquet(os.fspath(out), partition_cols=["capture"])


def stitch(table: pa.Table, *, tcp_timeout: float = 300.0, udp_timeout: float = 60.0) -> pa.Table:
    """Joins the pieces of connections that ``per_file`` found cut at file boundaries.

    Captures are taken in the order of their first connection (rotated files do not overlap).
    A ``cut_end`` record and the next capture's first record of the same socket pair (either
    direction) are one connection when that record is ``cut_start`` and began within the
    inactivity timeout of the first's last packet. The joined record keeps the earlier piece's
    id, capture, sockets, start and handshake, adds up the packet and byte counts, and takes
    the later piece's end and teardown; its ``history`` is the first's letters followed by the
    later's new ones, and its ``conn_state`` is decided again from that history by the same
    verdict as a whole run's. Chains over several files join in turn. With anything joined, the
    rows come in order of first packet.
    """
    if table.num_rows == 0:
        return table
    starts = table.group_by("capture").aggregate([("ts", "min")])
    order = {c: i for i, c in enumerate(starts.sort_by("ts_min")["capture"].to_pylist())}
    flagged = pc.or_(table["cut_start"], table["cut_end"])
    candidates = table.filter(flagged).to_pylist()
    by_pair: dict[tuple, list[dict]] = defaultdict(list)
    for row in candidates:
        ends = sorted([(row["orig_ip"], row["orig_port"]), (row["resp_ip"], row["resp_port"])])
        by_pair[(row["proto"], *ends)].append(row)
    joined, absorbed = [], set()
    for rows in by_pair.values():
        rows.sort(key=lambda r: (order[r["capture"]], r["ts"]))
        current = None
        for row in rows:
            timeout = tcp_timeout if row["proto"] == "tcp" else udp_timeout
            if (
                current is not None
                and current["cut_end"]
                and row["cut_start"]
                and order[row["capture"]] == order[current["last_capture"]] + 1
                and (row["ts"] - _last(current)).total_seconds() <= timeout
                # A SYN starts a new connection, unless the one before never got past its own.
                and (row["handshake_syn_ts"] is None or current["handshake_state"] != "complete")
            ):
                absorbed.add((current["capture"], current["id"]))
                absorbed.add((row["capture"], row["id"]))
                current = _join(current, row)
                continue
            if current is not None and "last_capture" in current and current["last_capture"] != current["capture"]:
                joined.append(current)
            current = dict(row, last_capture=row["capture"])
        if current is not None and current["last_capture"] != current["capture"]:
            joined.append(current)
    if not joined:
        return table
    keys = pa.array([f"{c}\x00{i}" for c, i in zip(table["capture"].to_pylist(), table["id"].to_pylist())])
    gone = pa.array([f"{c}\x00{i}" for c, i in absorbed])
    kept = table.filter(pc.invert(pc.is_in(keys, value_set=gone)))
    for row in joined:
        del row["last_capture"]
    merged = pa.Table.from_pylist(joined, schema=table.schema)
    return pa.concat_tables([kept, merged]).sort_by([("ts", "ascending"), ("capture", "ascending"), ("id", "ascending")])


def _last(row: dict) -> Any:
    return row["ts"] + row["duration"]


def _join(first: dict, later: dict) -> dict:
    """One connection from two pieces, ``later`` oriented as ``first``."""
    swapped = (later["orig_ip"], later["orig_port"]) != (first["orig_ip"], first["orig_port"])
    side = {"orig": "resp", "resp": "orig"} if swapped else {"orig": "orig", "resp": "resp"}
    out = dict(first)
    for name in _SUMMED:
        for mine in ("orig", "resp"):
            a, b = first[f"{mine}_{name}"], later[f"{side[mine]}_{name}"]
            out[f"{mine}_{name}"] = None if a is None and b is None else (a or 0) + (b or 0)
    out["duration"] = max(_last(first), _last(later)) - first["ts"]
    for name in later:
        if name.startswith("teardown_") or name in ("end", "cut_end"):
            value = later[name]
            if name == "teardown_initiator" and swapped and value in side:
                value = side[value]
            out[name] = value
    out["service"] = first["service"] or later["service"]
    # The later piece's letters in the first's orientation, with no flip mark of its own.
    history = later["history"].replace("^", "")
    history = history.swapcase() if swapped else history
    out["history"] = first["history"] + "".join(c for c in dict.fromkeys(history) if c not in first["history"])
    out["conn_state"] = _joined_state(first, out)
    out["last_capture"] = later["capture"]
    return out


def _joined_state(first: dict, joined: dict) -> str:
    """Zeek's conn_state of the joined connection, by the same decision as for one piece, from
    each side's endpoint state as the joined history tells it."""
    if joined["proto"] != "tcp":
        orig, resp = ("active" if joined[f"{side}_pkts"] else "inactive" for side in ("orig", "resp"))
        return _sockscope.conn_state(False, orig, resp, 0, 0, "")
    history = joined["history"]
    plain = history.replace("^", "")
    # A SYN answered, or an answer acknowledged, as Zeek takes both sides past the handshake.
    answered = "h" in plain and ("S" in plain or "A" in plain[plain.index("h") :])
    established = first["handshake_state"] == "complete" or answered
    orig, resp = _endpoints(plain, established)
    return _sockscope.conn_state(True, orig, resp, joined["orig_bytes"], joined["resp_bytes"], history)


def _endpoints(history: str, established: bool) -> tuple[str, str]:
    """Both sides' endpoint states from the history's letters, in order: how far the handshake
    got, then FINs and RSTs as the TCP analysis takes them (a RST after its own FIN resets only
    while the peer is still open; the peer's FIN after that makes it a normal close again)."""
    sides = []
    for mine in (str.isupper, str.islower):
        letters = [c for c in history if mine(c)]
        if established:
            sides.append("established")
        elif "S" in letters:
            sides.append("syn_sent")
        elif "H" in letters or "h" in letters:
            sides.append("syn_ack_sent")
        else:
            sides.append("partial" if letters else "inactive")
    closed_then_reset = [False, False]
    for c in history:
        me = 0 if c.isupper() else 1
        peer = 1 - me
        if c in "Ff":
            sides[me] = "closed"
            if sides[peer] == "reset" and closed_then_reset[peer]:
                sides[peer] = "closed"
        elif c in "Rr" and (sides[me] != "closed" or sides[peer] != "closed"):
            closed_then_reset[me] = sides[me] == "closed"
            sides[me] = "reset"
    return sides[0], sides[1]
