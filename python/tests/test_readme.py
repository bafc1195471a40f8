"""The README's Python session runs as written, from the repository's root, and the install
command it gives is the one CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO


def python_section() -> str:
    readme = (REPO / "README.md").read_text()
    return readme[readme.index("## From Python") : readme.index("\n## ", readme.index("## From Python") + 1)]


def test_the_readme_session_runs_as_written():
    blocks = re.findall(r"```python\n(.*?)```", python_section(), re.S)
    assert blocks, "the README's Python session"
    for block in blocks:
        run = subprocess.run([sys.executable, "-c", block], cwd=REPO, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "12 timestamp[us, tz=UTC]" in run.stdout
        assert "REJ" not in run.stderr


def test_the_readme_install_command_is_the_one_ci_runs():
    install = re.findall(r"```sh\n(.*?)```", python_section(), re.S)
    assert install == ["pip install ./python\n"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"/pip install[^\n]* \./python[ \n]", ci), "CI installs the package as the README says"
    assert os.path.isdir(REPO / "python")
