"""What the three feed renderers share: entry ids, entry bodies, and crediting outlets.

Every format credits every outlet that carried an item, with that outlet's own link,
in an HTML footer appended to the entry body.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import TypeGuard
from urllib.parse import urlsplit

from aggregator.exceptions import PublishError
from aggregator.process.normalize import UNTITLED
from aggregator.types import Credit, FeedPage, PublishedEntry, Report

ENTRY_ID_PREFIX = "tag:aggregator,2026:item:"
# What an XML renderer does to each entry body before writing it.
CleanBody = Callable[[str], str]
# A renderer of a page, given how to clean each entry body.
XmlRender = Callable[[FeedPage, CleanBody], bytes]

# Characters XML 1.0 cannot carry even escaped; lxml refuses them outright.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def entry_id(entry: PublishedEntry) -> str:
    """The entry's permanent id, from our identity row (and the outlet, for one outlet's
    copy); never derived from a render."""
    suffix = f"/{entry.outlet}" if entry.outlet else ""
    return f"{ENTRY_ID_PREFIX}{entry.id}{suffix}"


def entry_title(entry: PublishedEntry) -> str:
    """The title as XML can carry it; Atom and RSS both refuse an empty one."""
    return xml_safe(entry.title) or UNTITLED


def xml_safe(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _as_stored(text: str) -> str:
    return text


def rendered_xml(page: FeedPage, render: XmlRender, format_name: str) -> bytes:
    """``render(page, clean_body)`` with each entry body as the store holds it (cleaned of
    what XML cannot carry when it was stored, ``process/sanitize.py``), and again with
    the bodies ``xml_safe`` when lxml refuses the document: scanning every body of a page
    took two of its milliseconds. PublishError when feedgen refuses it either way."""
    try:
        return render(page, _as_stored)
    except ValueError:  # a body lxml refuses: cleaned this time
        pass
    try:
        return render(page, xml_safe)
    except ValueError as exc:  # feedgen's refusal of a missing or non-XML field
        raise PublishError(
            f"cannot render {page.kind}/{page.slug} as {format_name}: {exc}"
        ) from exc


def is_web_url(url: str | None) -> TypeGuard[str]:
    if url is None:
        return False
    # What urlsplit would say of a stored link, without splitting it (a page checks
    # hundreds); other spellings ("HTTP:", leading blanks) go through urlsplit.
    return url.startswith(("https://", "http://")) or urlsplit(url).scheme in ("http", "https")


def outlet_names(credits: tuple[Credit, ...]) -> str:
    """Outlet titles joined for a byline: "Sputnik International, Fars News"."""
    return ", ".join(credit.source_title for credit in credits)


def first_credit_link(credits: tuple[Credit, ...]) -> str | None:
    return next((c.link for c in credits if is_web_url(c.link)), None)


def credits_footer_html(credits: tuple[Credit, ...]) -> str:
    """``<p>Reported by: <a href=…>Outlet</a>, …</p>``, or "" when nobody is credited."""
    if not credits:
        return ""
    names = []
    for credit in credits:
        name = html.escape(credit.source_title)
        if is_web_url(credit.link):
            names.append(f'<a href="{html.escape(credit.link)}">{name}</a>')
        else:
            names.append(name)
    return f'<p class="aggregator-credits">Reported by: {", ".join(names)}</p>'


def reports_html(reports: tuple[Report, ...]) -> str:
    """A story's reports, one per outlet and article: its own title, linked."""
    if not reports:
        return ""
    lines = []
    for report in reports:
        title = html.escape(xml_safe(report.title) or UNTITLED)
        if is_web_url(report.link):
            title = f'<a href="{html.escape(report.link)}">{title}</a>'
        lines.append(f"<li>{title} ({html.escape(report.source_title)})</li>")
    outlets = len({report.source for report in reports})
    return (
        f'<div class="aggregator-story"><p>Reported by {outlets} outlets:</p>'
        f"<ul>{''.join(lines)}</ul></div>"
    )


def entry_body_html(entry: PublishedEntry) -> str:
    """The entry's content (else its summary) followed by the credits footer, or for a
    story entry, the list of every report.

    Content and summary are already-sanitized HTML from the store, so they are
    passed through untouched; only the footer is built (and escaped) here.
    """
    body = entry.content_html or entry.summary_html or ""
    footer = reports_html(entry.reports) or credits_footer_html(entry.credits)
    if body and footer:
        return f"{body}\n{footer}"
    return body or footer


def site_base_url(page: FeedPage) -> str:
    """The site root the page is served under, for series links and category schemes.

    ``self_url`` is ``{base}/{kind}/{slug}`` because that is the app's route; fall back
    to the home page when the page was built some other way.
    """
    route = f"/{page.kind}/{page.slug}"
    if page.self_url.endswith(route):
        return page.self_url[: -len(route)]
    return page.home_url.rstrip("/")


def series_scheme(page: FeedPage) -> str:
    return f"{site_base_url(page)}/series/"


def category_fields(
    entry: PublishedEntry, series_scheme: str, *, with_label: bool
) -> list[dict[str, str]]:
    """feedgen category dicts: the outlet's categories, then our series.

    RSS leaves labels out: its readers match on the term.
    """
    fields = []
    for category in entry.categories:
        if not category.term:
            continue
        field = {"term": xml_safe(category.term)}
        if category.domain:
            field["scheme"] = category.domain
        if with_label and category.label:
            field["label"] = xml_safe(category.label)
        fields.append(field)
    fields.extend({"term": slug, "scheme": series_scheme} for slug in entry.series)
    return fields


def feed_language(page: FeedPage) -> str | None:
    """The language the page is written in: its entries' one language, when all that
    say theirs say the same (a feed of English and French outlets says none)."""
    languages = {entry.language.casefold() for entry in page.entries if entry.language}
    return languages.pop() if len(languages) == 1 else None
