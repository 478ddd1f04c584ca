"""Which code reads documents, as a key: what a digest of a document or of an entry is
made under, so that an upgrade reads again what the code before it read.

Stored entries are normalized again when their digest's key changes
(``process/normalize.py``), and a document that could not be read is tried again
(``process/unreadable.py``). The key covers our parsing and normalizing modules (their
files, so that no revision number must be remembered to bump), the libraries that
read (their installed versions) and Python (urllib.parse and html change in patch
releases too).

Computed once in the polling process and handed to the parse workers with each
document: the workers read no files and do not import importlib.metadata (4 MB each).
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import aggregator

KEY_SIZE = 32
PACKAGE = Path(aggregator.__file__).resolve().parent
READING_FOLDERS = ("parse", "process")
READING_FILES = ("types.py",)
# feedparser reads loose documents with feedparser-sgmllib, and guesses encodings with
# chardet or cchardet when either is installed.
LIBRARIES = ("feedparser", "feedparser-sgmllib", "chardet", "cchardet", "lxml", "nh3")


@functools.cache
def reading_code_key() -> bytes:
    """The key of the installed code."""
    return code_key(PACKAGE, _installed_versions(), python=sys.version)


def code_key(package: Path, versions: Mapping[str, str], *, python: str) -> bytes:
    """The key of the reading code in ``package`` (our source tree) with these library
    versions, under this Python."""
    digest = hashlib.blake2b(digest_size=KEY_SIZE)
    digest.update(f"{python}|{aggregator.__version__}".encode())
    for library in sorted(versions):
        digest.update(f"|{library}={versions[library]}".encode())
    files = sorted(p for folder in READING_FOLDERS for p in (package / folder).rglob("*.py"))
    for path in [*files, *(package / name for name in READING_FILES)]:
        content = path.read_bytes()
        digest.update(f"|{path.relative_to(package).as_posix()}|{len(content)}|".encode())
        digest.update(content)
    return digest.digest()


def _installed_versions() -> dict[str, str]:
    found = {}
    for library in LIBRARIES:
        try:
            found[library] = version(library)
        except PackageNotFoundError:
            found[library] = "?"
    return found
