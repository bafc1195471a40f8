"""Connections, handshakes and teardowns in saved packet captures, as Arrow tables.

The analysis is sockscope's own (the Rust library behind the ``sockscope`` command); the
results come to Python as ``pyarrow`` record batches through the Arrow C data interface,
without passing rows through Python objects::

    import sockscope
    conns = sockscope.connections("capture.pcapng")      # a pyarrow.Table
    conns.to_pandas()                                    # or polars.from_arrow(conns)

Inputs are files (pcap, pcapng, optionally gzip) or directories of them, read as one
timeline, as ``sockscope conns FILE...`` reads them. The table's columns are exactly those
of ``sockscope conns --format parquet`` (times as UTC timestamps, spans as durations).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Iterable, Iterator, Sequence, Union

import pyarrow as pa

from . import _sockscope
from ._sockscope import CaptureError, Error

__all__ = [
    "CaptureError",
    "CaptureWarning",
    "Error",
    "connections",
    "iter_batches",
    "schema",
    "sockets",
    "summary",
]

Paths = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]]
Filter = Union[str, Sequence[str], None]


class CaptureWarning(UserWarning):
    """A capture was cut short (everything before the cut is in the results), or connections
    were ended early to stay within ``max_connections``."""


def _paths(paths: Paths) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    listed = [os.fspath(p) for p in paths]
    if not listed:
        raise ValueError("paths: give at least one capture file or directory")
    return listed


def _settings(
    filter: Filter,
    tcp_timeout: float,
    udp_timeout: float,
    max_connections: int,
    no_decap: bool,
    jobs: int,
    community_id_seed: int = 0,
    order: str = "first",
) -> _sockscope.Settings:
    """The analysis settings as the native module takes them (it checks them as the command
    line does)."""
    if order not in ("first", "end"):
        raise ValueError(f"order: '{order}' is neither 'first' nor 'end'")
    return {
        "filter": None if filter is None else [filter] if isinstance(filter, str) else list(filter),
        "tcp_timeout": float(tcp_timeout),
        "udp_timeout": float(udp_timeout),
        "max_connections": int(max_connections),
        "no_decap": bool(no_decap),
        "jobs": int(jobs),
        "community_id_seed": int(community_id_seed),
        "end_order": order == "end",
    }


def _warn(messages: Iterable[str]) -> None:
    for message in messages:
        warnings.warn(message, CaptureWarning, stacklevel=3)


def schema() -> pa.Schema:
    """The schema of every connection table and batch: the Parquet output's columns."""
    return _sockscope.schema()


def iter_batches(
    paths: Paths,
    *,
    filter: Filter = None,
    tcp_timeout: float = 300.0,
    udp_timeout: float = 60.0,
    max_connections: int = 10_000_000,
    no_decap: bool = False,
    jobs: int = 0,
    community_id_seed: int = 0,
    order: str = "first",
    batch_size: int = 65536,
) -> Iterator[pa.RecordBatch]:
    """Streams the connections of ``paths`` as ``pyarrow.RecordBatch`` es of up to
    ``batch_size`` rows, for inputs whose connections do not fit in memory at once.

    The analysis runs on threads of its own, without the GIL, a few batches ahead of the
    consumer; memory stays bounded however large the inputs.

    Args:
        paths: a capture file or directory, or several (one timeline, like rotated pieces).
        filter: a filter expression as ``sockscope conns --filter`` takes it (e.g.
            ``"tcp and state=REJ"``), or several, all of which must match.
        tcp_timeout: seconds without a packet after which a TCP connection ends.
        udp_timeout: seconds without a packet after which a UDP flow ends.
        max_connections: most live connections held at once; beyond it the least recently
            active end early (a ``CaptureWarning`` says how many).
        no_decap: do not look through tunnels (GRE, VXLAN, ...).
        jobs: threads for the analysis; 0 picks as the command line does.
        community_id_seed: the seed of the ``community_id`` column.
        order: ``"first"`` (by first packet, the ``id`` order) or ``"end"`` (as they end).
        batch_size: most rows per batch.

    Raises:
        CaptureError: an input could not be read as a capture (raised after the batches of
            the inputs read before it); the message names the file and the reason.
        ValueError: an argument the command line would refuse, e.g. a bad filter.
    """
    settings = _settings(filter, tcp_timeout, udp_timeout, max_connections, no_decap, jobs, community_id_seed, order)
    batches = _sockscope.batches(_paths(paths), settings, int(batch_size))
    return _stream(batches)


def _stream(batches: _sockscope.Batches) -> Iterator[pa.RecordBatch]:
    yield from batches
    _warn(batches.warnings())


def connections(
    paths: Paths,
    *,
    filter: Filter = None,
    tcp_timeout: float = 300.0,
    udp_timeout: float = 60.0,
    max_connections: int = 10_000_000,
    no_decap: bool = False,
    jobs: int = 0,
    community_id_seed: int = 0,
    order: str = "first",
) -> pa.Table:
    """Every connection of ``paths`` as one ``pyarrow.Table``, a row per connection, with the
    columns of ``sockscope conns --format parquet`` (``schema()``).

    Takes the arguments of ``iter_batches`` (but ``batch_size``) and raises as it does.

    >>> conns = connections("samples/teardowns.pcap")
    >>> conns.num_rows
    12
    """
    batches = iter_batches(
        paths,
        filter=filter,
        tcp_timeout=tcp_timeout,
        udp_timeout=udp_timeout,
        max_connections=max_connections,
        no_decap=no_decap,
        jobs=jobs,
        community_id_seed=community_id_seed,
        order=order,
    )
    return pa.Table.from_batches(list(batches), schema=schema())


def sockets(
    paths: Paths,
    *,
    filter: Filter = None,
    tcp_timeout: float = 300.0,
    udp_timeout: float = 60.0,
    max_connections: int = 10_000_000,
    no_decap: bool = False,
    jobs: int = 0,
) -> pa.Table:
    """The socket inventory of ``paths`` (of the connections ``filter`` keeps), a row per
    ``<protocol, IP, port>`` with the columns of ``sockscope sockets --format csv``.

    Takes the analysis arguments of ``iter_batches`` and raises as it does.
    """
    settings = _settings(filter, tcp_timeout, udp_timeout, max_connections, no_decap, jobs)
    batch, notes = _sockscope.sockets(_paths(paths), settings)
    _warn(notes)
    return pa.Table.from_batches([batch])


def summary(
    paths: Paths,
    *,
    filter: Filter = None,
    tcp_timeout: float = 300.0,
    udp_timeout: float = 60.0,
    max_connections: int = 10_000_000,
    no_decap: bool = False,
    jobs: int = 0,
) -> dict[str, Any]:
    """Totals over the connections of ``paths``: packet accounting, states, handshakes,
    teardowns, RTTs, busiest sockets; the document ``sockscope summary --format json`` prints.

    Takes the analysis arguments of ``iter_batches`` and raises as it does.
    """
    settings = _settings(filter, tcp_timeout, udp_timeout, max_connections, no_decap, jobs)
    text, notes = _sockscope.summary(_paths(paths), settings)
    _warn(notes)
    return json.loads(text)
