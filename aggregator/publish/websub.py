"""WebSub publishing (W3C WebSub, section 7): the hub hears which feeds changed.

With ``server.websub_hub`` set, every feed names the hub (``<link rel="hub">``, JSON
Feed's ``hubs``), and after each batch of polls the polling process tells the hub which
feed addresses now show something new, so that subscribers get it pushed instead of
asking. What a feed showed when the hub was last told is kept in the store (``state``),
so a restart neither pings every feed again nor forgets a change made while it was down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import httpx

from aggregator.publish import FEED_FORMATS
from aggregator.publish.etag import body_etag
from aggregator.publish.paging import page_url

if TYPE_CHECKING:
    from aggregator.publish.app import Catalog

log = logging.getLogger(__name__)

STATE_KEY = "websub"
PING_TIMEOUT = 10.0  # seconds
# A feed's change shows in every format: its JSON Feed is the cheapest to render.
_WITNESS = FEED_FORMATS["json"]


class HubNotifier:
    def __init__(
        self,
        hub: str,
        catalog: Catalog,
        *,
        state: tuple[Callable[[str], str | None], Callable[[str, str], None]],
        post: Callable[[str, dict[str, str]], int] | None = None,
    ) -> None:
        self.hub = hub
        self._catalog = catalog
        self._read_state, self._write_state = state
        self._post = post or _post
        self.owed = False  # the hub could not be told of some change yet

    def notify(self) -> list[str]:
        """Tell the hub of every feed address whose content changed since it was last
        told (all formats of a changed feed); the addresses told."""
        known: dict[str, str] = json.loads(self._read_state(STATE_KEY) or "{}")
        listing = self._catalog.listing(counts=False)
        told: list[str] = []
        now: dict[str, str] = {}
        failed = False
        for info in (*listing.feeds, *listing.series):
            page = self._catalog.feed_page(info.kind, info.slug)
            if page is None:
                continue
            key = f"{info.kind}/{info.slug}"
            now[key] = body_etag(_WITNESS.render(page))
            if known.get(key) == now[key]:
                continue
            urls = [page_url(page, fmt, 1) for fmt in FEED_FORMATS]
            if not failed and self._publish(urls):
                told += urls
            else:  # not told (nor tried, once the hub failed): again after the next batch
                now[key] = known.get(key, "")
                failed = True
        self.owed = failed
        if now != known:
            self._write_state(STATE_KEY, json.dumps(now, sort_keys=True))
        return told

    def _publish(self, urls: Sequence[str]) -> bool:
        for url in urls:
            try:
                status = self._post(self.hub, {"hub.mode": "publish", "hub.url": url})
            except httpx.HTTPError as exc:
                log.warning("websub: cannot reach the hub %s: %s", self.hub, exc)
                return False
            if not 200 <= status < 300:
                log.warning("websub: the hub %s answered %d for %s", self.hub, status, url)
                return False
        log.info("websub: told %s of %d changed addresses", self.hub, len(urls))
        return True


def _post(hub: str, form: dict[str, str]) -> int:
    response = httpx.post(hub, data=form, timeout=PING_TIMEOUT)
    return response.status_code
