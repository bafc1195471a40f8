"""Shared by the package's tests: the repository, the command-line binary they compare
against, and the captures (the samples, plus the shared corpus when it is beside the
repository)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "captures"


def cli_path() -> Path:
    """`SOCKSCOPE_BIN`, else the binary `cargo build` or `cargo test` left."""
    named = os.environ.get("SOCKSCOPE_BIN")
    candidates = [Path(named)] if named else [REPO / "target" / d / "sockscope" for d in ("debug", "release")]
    found = [c for c in candidates if c.is_file()]
    if not found:
        pytest.fail("no sockscope binary: run `cargo build` first, or name one in SOCKSCOPE_BIN")
    return max(found, key=lambda c: c.stat().st_mtime)


def cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """Runs the command line as a user would."""
    return subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True, check=False)


def cli_jsonl(*paths: str | os.PathLike[str]) -> list[dict]:
    out = cli("conns", "--format", "jsonl", *paths)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def sample_captures() -> list[Path]:
    return sorted(p for p in (REPO / "samples").iterdir() if p.suffix in (".pcap", ".pcapng", ".gz"))


def shared_captures() -> list[Path]:
    """Files of the shared corpus with oracles beside them; none when it is absent."""
    if not SHARED.is_dir():
        return []
    return sorted(p for p in SHARED.iterdir() if (SHARED / f"{p.name}.capinfos.txt").exists())


def all_captures() -> list[Path]:
    return sample_captures() + shared_captures()


def generate(profile: str, packets: int, out: os.PathLike[str]) -> None:
    """A synthetic capture from the repository's generator (`tools/gen.rs`)."""
    run = subprocess.run(
        ["cargo", "run", "--quiet", "--example", "gen", "--", profile, str(packets), os.fspath(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr


def split_pcap(capture: Path, out_dir: Path, at: float = 0.5) -> list[Path]:
    """Cuts a classic pcap file in two at the packet `at` of the way through, as rotation
    (`tcpdump -C`) would: each piece a capture of its own."""
    data = capture.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    header, records, pos = data[:24], [], 24
    while pos + 16 <= len(data):
        length = int.from_bytes(data[pos + 8 : pos + 12], "little" if order == "<" else "big")
        records.append(data[pos : pos + 16 + length])
        pos += 16 + length
    cut = int(len(records) * at)
    pieces = [records[:cut], records[cut:]]
    paths = []
    for i, piece in enumerate(pieces):
        path = out_dir / f"{capture.stem}.{i}.pcap"
        path.write_bytes(header + b"".join(piece))
        paths.append(path)
    return paths
