"""Documents that could not be read, known again without reading them.

A source that sends something that is no feed (an HTML page, a broken document, one
that makes the parser run past its time budget) mostly sends the same bytes again at
the next poll. Their digest is kept with the source; bytes with the same digest fail
the same way, and are not parsed again. The digest is keyed by the code that reads
documents (our parsing and normalizing modules, the parsing libraries, Python), so
that an upgrade reads them again.

Computed in the polling process, which imports no parser: the modules' files are read,
not imported, and the libraries' versions come from their installed metadata.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DIGEST_SIZE = 16
_PACKAGE = Path(__file__).resolve().parent.parent
_READING_CODE = ("parse", "process")
_LIBRARIES = ("feedparser", "lxml", "nh3")


def document_digest(content: bytes) -> bytes:
    """The digest a document that could not be read is known by."""
    return hashlib.blake2b(content, digest_size=DIGEST_SIZE, key=_code_key()).digest()


@functools.cache
def _code_key() -> bytes:
    digest = hashlib.blake2b(sys.version.encode(), digest_size=32)
    for library in _LIBRARIES:
        try:
            digest.update(f"|{library}={version(library)}".encode())
        except PackageNotFoundError:
            digest.update(f"|{library}=?".encode())
    for path in sorted(p for folder in _READING_CODE for p in (_PACKAGE / folder).glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update((_PACKAGE / "types.py").read_bytes())
    return digest.digest()
