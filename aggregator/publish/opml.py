"""OPML 2.0 subscription list of every merged feed (http://opml.org/spec2.opml).

Series are left out: they are running stories that come and go, and a reader that
imports the list would keep polling them after they end.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aggregator.publish import feed_url
from aggregator.types import Listing

OPML_TITLE = "Merged feeds"


def render_opml(listing: Listing, *, base_url: str) -> bytes:
    """One ``type="rss"`` outline per merged feed, as UTF-8 XML."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = OPML_TITLE
    ET.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ET.SubElement(root, "body")
    for info in listing.feeds:
        outline = ET.SubElement(
            body,
            "outline",
            type="rss",
            text=info.title,
            title=info.title,
            xmlUrl=feed_url(base_url, info.kind, info.slug, "rss"),
            htmlUrl=base_url,
        )
        if info.description:
            outline.set("description", info.description)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
