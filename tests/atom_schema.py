"""Atom documents checked against the RELAX NG schema of RFC 4287 (Appendix B)."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

# The RFC's compact schema (rfc4287.rnc beside it) in the XML syntax lxml reads;
# tests/data/atom/PROVENANCE.md says how it was converted.
SCHEMA = Path(__file__).parent / "data" / "atom" / "rfc4287.rng"


@functools.cache
def _schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def atom_errors(document: bytes) -> list[str]:
    """What makes ``document`` invalid Atom (none: it is valid)."""
    schema = _schema()
    if schema.validate(etree.fromstring(document)):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
