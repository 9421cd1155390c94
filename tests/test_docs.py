"""The documentation: the API reference builds from the docstrings with warnings as errors, and the README's
Python examples run exactly as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_reference_builds_with_warnings_as_errors(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "semkit" / "index.html").read_text()
    for name in ("semkit.find_regions", "semkit.study", "semkit.SemanticFunction", "semkit.open"):
        assert f'id="{name}"' in page
    for html in (tmp_path / "site").rglob("index.html"):  # cross references are links or code, never raw roles
        raw = re.findall(r":(?:class|func|meth|data|mod|attr):", html.read_text())
        assert not raw, f"{html.parent.name}: the reference shows Sphinx roles {raw[:3]} as text: write [`Name`][semkit.Name]"
    assert '<table>' in page and "Parameters" in page  # numpydoc sections render as tables


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_the_readme_examples_run_as_written(index, tmp_path):
    """Each block in an empty folder, offline, in a fresh interpreter (the tour within 3 minutes)."""
    code = "import matplotlib\nmatplotlib.use('Agg')\n" + python_blocks()[index]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "SEMKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
