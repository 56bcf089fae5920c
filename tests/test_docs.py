"""The docs build: `mkdocs build --strict` over docs/ (skipped where mkdocs is absent), and
the README stays a newcomer's guide that links every docs page."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "compatibility" / "index.html").exists()


def test_the_readme_is_short_and_links_the_docs():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    assert len(readme.splitlines()) <= 260
    pages = sorted(name for name in os.listdir(os.path.join(ROOT, "docs"))
                   if name.endswith(".md") and name != "index.md")
    linked = set(re.findall(r"\(docs/([\w-]+\.md)\)", readme))
    assert set(pages) <= linked, sorted(set(pages) - linked)


def test_the_extending_page_runs_and_prints_what_it_says(tmp_path):
    """docs/extending.md's Python blocks, run in order in a fresh process, print its text
    blocks; its TOML block builds the optimizer the page builds in Python."""
    with open(os.path.join(ROOT, "docs", "extending.md"), encoding="utf-8") as fh:
        page = fh.read()
    code = "\n".join(re.findall(r"```python\n(.*?)```", page, re.S))
    (toml,) = re.findall(r"```toml\n(.*?)```", page, re.S)
    code += ("\nimport tomllib\n"
             f"table = tomllib.loads({toml!r})['optimizer']\n"
             "print(pn.optim.from_config(table).config() == optimizer.config())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    refusal, transform, accuracy, same = done.stdout.splitlines()
    texts = re.findall(r"```text\n(.*?)\n```", page, re.S)
    assert [refusal, transform] == texts[:2]
    assert float(accuracy) > 0.9 and same == "True"
