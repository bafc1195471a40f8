"""The README's Python session runs as written, one block after the other as in a notebook, in
a folder holding the samples it names; and the install command it gives is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, cli_jsonl


def python_section() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## From Python")
    return readme[start : readme.index("\n## ", start + 1)]


def test_the_readme_session_runs_as_written(tmp_path: Path):
    pytest.importorskip("ray")
    blocks = re.findall(r"```python\n(.*?)```", python_section(), re.S)
    assert len(blocks) == 2, "the README's Python session and its Ray recipe"
    (tmp_path / "samples").symlink_to(REPO / "samples")
    session = "\n".join(blocks) + "\nprint('joined', whole.num_rows)\n"
    run = subprocess.run([sys.executable, "-c", session], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "12 timestamp[us, tz=UTC]" in run.stdout
    assert (tmp_path / "conns" / "capture=teardowns.pcap").is_dir()
    captures = ["teardowns.pcap", "ipv6.pcap", "udp_and_reuse.pcapng"]
    total = sum(len(cli_jsonl(REPO / "samples" / c)) for c in captures)
    assert f"joined {total}\n" in run.stdout


def test_the_readme_install_command_is_the_one_ci_runs():
    install = re.findall(r"```sh\n(.*?)```", python_section(), re.S)
    assert install == ["pip install ./python\n"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"/pip install[^\n]* \./python[ \n]", ci), "CI installs the package as the README says"
