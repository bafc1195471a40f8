"""The native module; use the functions of ``sockscope`` instead."""

from typing import Iterator, Optional

import pyarrow as pa

class Error(Exception): ...
class CaptureError(Error): ...

class Batches(Iterator[pa.RecordBatch]):
    schema: pa.Schema
    def __iter__(self) -> Batches: ...
    def __next__(self) -> pa.RecordBatch: ...
    def span(self) -> Optional[tuple[int, int]]: ...
    def warnings(self) -> list[str]: ...

def batches(
    paths: list[str],
    filter: Optional[list[str]],
    tcp_timeout: float,
    udp_timeout: float,
    max_connections: int,
    no_decap: bool,
    jobs: int,
    community_id_seed: int,
    end_order: bool,
    batch_size: int,
) -> Batches: ...
def sockets(
    paths: list[str],
    filter: Optional[list[str]],
    tcp_timeout: float,
    udp_timeout: float,
    max_connections: int,
    no_decap: bool,
    jobs: int,
) -> tuple[pa.RecordBatch, list[str]]: ...
def summary(
    paths: list[str],
    filter: Optional[list[str]],
    tcp_timeout: float,
    udp_timeout: float,
    max_connections: int,
    no_decap: bool,
    jobs: int,
) -> tuple[str, list[str]]: ...
def schema() -> pa.Schema: ...
def conn_state(tcp: bool, orig: str, resp: str, orig_size: int, resp_size: int, history: str) -> str: ...
