"""Deterministic synthetic feeds for the ingest benchmark: RSS 2.0 and Atom 1.0, half each.

Every item carries ~3 KB of news-like HTML (paragraphs, inline links, one image, a list or a
quote, named and numeric entities), a unique guid/id and link, categories and an author, and
a date spread over the week before ``anchor``. The same seed gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

CONTENT_TARGET = 3000  # bytes of HTML per item
WINDOW = timedelta(days=7)

_WORD_TEXT = (
    "government minister officials talks border ceasefire economy inflation markets shares "
    "central bank rates election campaign voters parliament coalition opposition protest "
    "police court ruling appeal judge investigation report agency sources statement spokesman "
    "president prime foreign defence security troops region province capital city village "
    "residents families hospital doctors health vaccine outbreak climate drought flooding "
    "storm energy oil gas prices exports imports trade tariffs sanctions summit delegation "
    "agreement negotiations proposal budget deficit growth quarter forecast analysts investors "
    "company chief executive profits losses workers union strike wages industry technology "
    "software startup network data privacy regulators lawmakers bill vote committee hearing "
    "witness evidence charges trial verdict sentence prison release refugees migrants camp aid "
    "humanitarian convoy supplies shortage water power outage railway airport flights passengers "
    "school students teachers university research scientists study findings museum festival "
    "championship team coach season match victory defeat record league final tournament fans"
)
_WORDS = tuple(_WORD_TEXT.split())
_NAMES = (
    "Amira Haddad",
    "Jonas Lindqvist",
    "María José Peña",
    "Chen Wei",
    "Olusegun Adeyemi",
    "Siobhán O'Connor",
    "Dmitri Volkov",
    "Priya Raghunathan",
    "Lucas Moreau",
    "Hannah Schäfer",
)
_CATEGORIES = (
    "World",
    "Politics",
    "Business",
    "Middle East",
    "Europe",
    "Asia & Pacific",
    "Science",
    "Health",
    "Sport",
    "Technology",
    "Climate",
    "Analysis",
)
_ENTITIES = ("&amp;", "&mdash;", "&nbsp;", "&#8217;", "&eacute;", "&hellip;", "&#x2013;", "&quot;")


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    guid: str
    link: str
    title: str
    author: str
    categories: tuple[str, ...]
    published: datetime
    summary: str  # plain text
    content: str  # HTML


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratedFeed:
    name: str  # f0001
    filename: str  # f0001.rss / f0002.atom
    kind: str  # "rss" | "atom"
    body: bytes


class _Vocabulary:
    """A pool of sentences drawn once per seed, so building 50 000 items stays cheap."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"vocabulary:{seed}")
        self.sentences: list[str] = []
        for _ in range(3000):
            words = rng.choices(_WORDS, k=rng.randint(9, 22))
            words[0] = words[0].capitalize()
            if rng.random() < 0.35:
                words.insert(rng.randint(1, len(words) - 1), rng.choice(_ENTITIES))
            if rng.random() < 0.2:
                words.insert(rng.randint(1, len(words) - 1), f"{rng.randint(2, 9999):,}")
            self.sentences.append(" ".join(words) + rng.choice(".....?!"))


def _html(rng: random.Random, vocab: _Vocabulary, feed: str, n: int, link: str) -> str:
    parts: list[str] = []
    size = 0
    paragraph = 0
    while size < CONTENT_TARGET - 250:
        sentences = rng.choices(vocab.sentences, k=rng.randint(2, 4))
        if rng.random() < 0.6:
            i = rng.randrange(len(sentences))
            words = sentences[i].split(" ")
            j = rng.randrange(len(words))
            href = f"https://www.{rng.choice(_WORDS)}-news.example/{feed}/{n}/{paragraph}?ref=rss"
            words[j] = f'<a href="{escape(href)}">{words[j]}</a>'
            sentences[i] = " ".join(words)
        if rng.random() < 0.25:
            sentences[0] = f"<strong>{sentences[0]}</strong>"
        text = " ".join(sentences)
        parts.append(f"<p>{text}</p>")
        size += len(parts[-1])
        paragraph += 1
        if paragraph == 2:
            img = f"https://cdn.bench.example/{feed}/{n:05d}/lead.jpg"
            alt = " ".join(rng.choices(_WORDS, k=5))
            parts.append(
                f'<figure><img src="{img}" alt="{alt}" width="640" height="360" />'
                f"<figcaption>{alt.capitalize()} &mdash; Photo: {rng.choice(_NAMES)}"
                "</figcaption></figure>"
            )
            size += len(parts[-1])
        if paragraph == 4:
            if rng.random() < 0.5:
                bullets = "".join(f"<li>{s}</li>" for s in rng.choices(vocab.sentences, k=3))
                parts.append(f"<ul>{bullets}</ul>")
            else:
                parts.append(
                    f"<blockquote>&ldquo;{rng.choice(vocab.sentences)}&rdquo;</blockquote>"
                )
            size += len(parts[-1])
    parts.append(f'<p><em>Read more: <a href="{escape(link)}">the full story</a>.</em></p>')
    return "\n".join(parts)


def make_item(
    rng: random.Random, vocab: _Vocabulary, feed: str, n: int, published: datetime
) -> Item:
    slug = "-".join(rng.choices(_WORDS, k=4))
    link = f"https://{feed}.bench.example/{published:%Y/%m/%d}/{slug}-{n:05d}.html"
    title_words = rng.choices(_WORDS, k=rng.randint(6, 11))
    title_words[0] = title_words[0].capitalize()
    if rng.random() < 0.15:
        title_words.insert(rng.randint(1, len(title_words) - 1), "&")
    if rng.random() < 0.1:
        title_words.append("\u2019live\u2019")
    summary = " ".join(w for w in rng.choice(vocab.sentences).split(" ") if "&" not in w)
    return Item(
        guid=f"urn:bench:{feed}:{n:05d}",
        link=link,
        title=" ".join(title_words),
        author=rng.choice(_NAMES),
        categories=tuple(sorted(set(rng.choices(_CATEGORIES, k=rng.randint(1, 3))))),
        published=published,
        summary=summary,
        content=_html(rng, vocab, feed, n, link),
    )


def _rss(name: str, items: list[Item], built: datetime, variant: int) -> bytes:
    """variant 0: summary in <description>, HTML in CDATA <content:encoded>;
    variant 1: the HTML escaped in <description>, guid = permalink."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>Bench Outlet {name} &amp; Co</title>\n"
        f"<link>https://{name}.bench.example/</link>\n"
        f"<description>Synthetic news outlet {name} for the ingest benchmark</description>\n"
        "<language>en</language>\n"
        f"<lastBuildDate>{format_datetime(built)}</lastBuildDate>\n"
    ]
    for it in items:
        cats = "".join(f"<category>{escape(c)}</category>" for c in it.categories)
        if variant == 0:
            guid = f'<guid isPermaLink="false">{it.guid}</guid>'
            body = (
                f"<description>{escape(it.summary)}</description>\n"
                f"<content:encoded><![CDATA[{it.content}]]></content:encoded>"
            )
        else:
            guid = f'<guid isPermaLink="true">{escape(it.link)}</guid>'
            body = f"<description>{escape(it.content)}</description>"
        out.append(
            f"<item>\n<title>{escape(it.title)}</title>\n<link>{escape(it.link)}</link>\n"
            f"{guid}\n<pubDate>{format_datetime(it.published)}</pubDate>\n"
            f"<dc:creator>{escape(it.author)}</dc:creator>\n{cats}\n{body}\n</item>\n"
        )
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode("utf-8")


def _atom(name: str, items: list[Item], built: datetime) -> bytes:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f'<title type="text">Bench Outlet {name} &amp; Co</title>\n'
        f'<link rel="alternate" type="text/html" href="https://{name}.bench.example/"/>\n'
        f"<id>tag:bench.example,2024:{name}</id>\n"
        f"<updated>{built.isoformat()}</updated>\n"
        f"<author><name>{name} newsroom</name></author>\n"
    ]
    for it in items:
        cats = "".join(f'<category term="{escape(c)}"/>' for c in it.categories)
        stamp = it.published.isoformat()
        out.append(
            f'<entry>\n<title type="html">{escape(escape(it.title))}</title>\n'
            f'<link rel="alternate" type="text/html" href="{escape(it.link)}"/>\n'
            f"<id>tag:bench.example,2024:{it.guid.removeprefix('urn:bench:')}</id>\n"
            f"<published>{stamp}</published>\n<updated>{stamp}</updated>\n"
            f"<author><name>{escape(it.author)}</name></author>\n{cats}\n"
            f'<summary type="text">{escape(it.summary)}</summary>\n'
            f'<content type="html">{escape(it.content)}</content>\n</entry>\n'
        )
    out.append("</feed>\n")
    return "".join(out).encode("utf-8")


class FeedFactory:
    """Builds feed ``index`` (1-based) in version 0 (the cold feed) or later versions, where
    each version adds ``added`` newer items and drops as many of the oldest (a sliding window,
    as publishers do)."""

    def __init__(self, *, seed: int, items: int, anchor: datetime) -> None:
        self.seed = seed
        self.items = items
        self.anchor = anchor.astimezone(UTC).replace(microsecond=0)
        self.vocab = _Vocabulary(seed)

    @staticmethod
    def name(index: int) -> str:
        return f"f{index:04d}"

    @staticmethod
    def kind(index: int) -> str:
        return "rss" if index % 2 else "atom"

    def filename(self, index: int) -> str:
        return f"{self.name(index)}.{self.kind(index)}"

    def _base_items(self, index: int) -> list[Item]:
        name = self.name(index)
        rng = random.Random(f"{self.seed}:{name}")
        # Dates spread over the week before the anchor, at least an hour old.
        span = int((WINDOW - timedelta(hours=1)).total_seconds())
        offsets = sorted(rng.randrange(3600, span) for _ in range(self.items))
        return [
            make_item(rng, self.vocab, name, n, self.anchor - timedelta(seconds=off))
            for n, off in enumerate(offsets, start=1)
        ]

    def _added_items(self, index: int, version: int, added: int) -> list[Item]:
        name = self.name(index)
        rng = random.Random(f"{self.seed}:{name}:v{version}")
        first = self.items + (version - 1) * added + 1
        # Newer than every earlier item, still in the past: within the last hour.
        stamps = [
            self.anchor - timedelta(minutes=59 - 10 * (version - 1) - k) for k in range(added)
        ]
        return [
            make_item(rng, self.vocab, name, first + k, stamp)
            for k, stamp in reversed(list(enumerate(stamps)))
        ]

    def build(self, index: int, *, version: int = 0, added: int = 5) -> GeneratedFeed:
        items = self._base_items(index)
        for v in range(1, version + 1):
            items = self._added_items(index, v, added) + items[: len(items) - added]
        built = max(it.published for it in items) if items else self.anchor
        name = self.name(index)
        if self.kind(index) == "rss":
            body = _rss(name, items, built, variant=(index // 2) % 2)
        else:
            body = _atom(name, items, built)
        return GeneratedFeed(
            name=name, filename=self.filename(index), kind=self.kind(index), body=body
        )
