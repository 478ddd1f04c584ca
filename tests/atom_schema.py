"""Atom documents checked against the RELAX NG schema of RFC 4287 (Appendix B)."""

from __future__ import annotations

import functools
from pathlib import Path

import rnc2rng
from lxml import etree

SCHEMA = Path(__file__).parent / "data" / "atom" / "rfc4287.rnc"


@functools.cache
def _schema() -> etree.RelaxNG:
    # rnc2rng declares the empty "local" namespace as xmlns:local="", which XML 1.0
    # namespaces forbid; the schema names it by its URI ("") where it uses it.
    grammar = rnc2rng.dumps(rnc2rng.load(str(SCHEMA))).replace(' xmlns:local=""', "")
    return etree.RelaxNG(etree.fromstring(grammar.encode("utf-8")))


def atom_errors(document: bytes) -> list[str]:
    """What makes ``document`` invalid Atom (none: it is valid)."""
    schema = _schema()
    if schema.validate(etree.fromstring(document)):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
