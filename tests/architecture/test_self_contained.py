"""The repository explains itself: no file in it cites a document kept outside it (the decisions
that code, comments and tests cite are in docs/architecture.md and the README)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Documents the project was planned from, which its readers do not have (spelt in parts so that
# this file does not cite them itself).
OUTSIDE = ("DESIGN" + ".md", "REFERENCE" + ".md", "../" + "shared", "data-science-" + "guide")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    found = []
    for name in filter(None, listed):
        path = ROOT / name.decode()
        if path.is_file() and b"\0" not in path.read_bytes()[:4096]:
            found.append(path)
    return found


def test_no_file_cites_a_document_outside_the_repository() -> None:
    citing = [f"{path.relative_to(ROOT)}: {needle}"
              for path in _tracked_text_files()
              for needle in OUTSIDE if needle in path.read_text(errors="replace")]
    assert citing == []


def test_the_architecture_document_is_there_and_cited() -> None:
    assert (ROOT / "docs" / "architecture.md").is_file()
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()
