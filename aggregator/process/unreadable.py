"""Documents that could not be read, known again without reading them.

A source that sends something that is no feed (an HTML page, a broken document, one
that makes the parser run past its time budget) mostly sends the same bytes again at
the next poll. Their digest is kept with the source; bytes with the same digest fail
the same way, and are not parsed again. The digest is keyed by the code that reads
documents (``reading_code.reading_code_key``), so that an upgrade reads them again.
"""

from __future__ import annotations

import hashlib

DIGEST_SIZE = 16


def document_digest(content: bytes, code_key: bytes) -> bytes:
    """The digest a document that could not be read is known by, under the reading
    code of ``code_key``."""
    return hashlib.blake2b(content, digest_size=DIGEST_SIZE, key=code_key).digest()
