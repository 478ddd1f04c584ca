"""The reading code's key: it changes with what reads documents, and only with that."""

from __future__ import annotations

import sys
from pathlib import Path

from aggregator.reading_code import (
    PACKAGE,
    READING_FOLDERS,
    _installed_versions,
    code_key,
    reading_code_key,
)

VERSIONS = {"feedparser": "6.0.12", "lxml": "6.0.2", "nh3": "0.3.2"}


def _package(root: Path) -> Path:
    for name, text in {
        "parse/xml_feed.py": "PARSER = 1\n",
        "process/normalize.py": "NORMALIZER = 1\n",
        "types.py": "ITEM = 1\n",
        "publish/rss.py": "RENDERER = 1\n",
        "cli.py": "MAIN = 1\n",
    }.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_key_changes_with_the_code_that_reads_documents(tmp_path: Path) -> None:
    package = _package(tmp_path)
    before = code_key(package, VERSIONS, python="3.11.7")
    assert code_key(package, VERSIONS, python="3.11.7") == before  # the same code, the same key
    for name in ("parse/xml_feed.py", "process/normalize.py", "types.py"):
        path = package / name
        text = path.read_text()
        path.write_text(text + "# changed\n")
        assert code_key(package, VERSIONS, python="3.11.7") != before, name
        path.write_text(text)
    (package / "parse" / "json_feed.py").write_text("")  # a new reading module, even empty
    after_new_module = code_key(package, VERSIONS, python="3.11.7")
    assert after_new_module != before
    (package / "process" / "formats").mkdir()
    (package / "process" / "formats" / "opml.py").write_text("")  # in a subpackage too
    assert code_key(package, VERSIONS, python="3.11.7") != after_new_module


def test_the_key_changes_with_the_libraries_and_python_that_read(tmp_path: Path) -> None:
    package = _package(tmp_path)
    before = code_key(package, VERSIONS, python="3.11.7")
    assert code_key(package, {**VERSIONS, "nh3": "0.3.3"}, python="3.11.7") != before
    assert code_key(package, {**VERSIONS, "lxml": "?"}, python="3.11.7") != before
    assert code_key(package, VERSIONS, python="3.11.8") != before


def test_code_that_reads_no_documents_leaves_the_key_alone(tmp_path: Path) -> None:
    """Changing a renderer or the command line does not renormalize every stored entry."""
    package = _package(tmp_path)
    before = code_key(package, VERSIONS, python="3.11.7")
    (package / "publish" / "rss.py").write_text("RENDERER = 2\n")
    (package / "cli.py").write_text("MAIN = 2\n")
    assert code_key(package, VERSIONS, python="3.11.7") == before


def test_the_installed_key_is_that_of_the_installed_reading_modules(tmp_path: Path) -> None:
    """The key of the installed code is made of its parse/, process/ and types.py: a
    copy of those alone has the same key, and a package without them another."""
    copy = tmp_path / "copy"
    for folder in READING_FOLDERS:
        for path in (PACKAGE / folder).rglob("*.py"):
            target = copy / path.relative_to(PACKAGE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (copy / "types.py").write_bytes((PACKAGE / "types.py").read_bytes())
    installed = _installed_versions()
    assert code_key(copy, installed, python=sys.version) == reading_code_key()
    empty = _package(tmp_path / "empty")
    assert code_key(empty, installed, python=sys.version) != reading_code_key()
