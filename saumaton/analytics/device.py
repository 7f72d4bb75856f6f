"""The kind of device an analytics event came from, told from the User-Agent header.

A few substring tests, not a parser: the funnel only needs mobile / tablet / desktop,
and recording an event must stay cheap. The header itself is never stored. Known
limits (docs/customer-reports.md): iPads since iPadOS 13 announce themselves as a
Mac and count as desktop; robots and anything unrecognised are "unknown".
"""

from __future__ import annotations

DEVICES = ("mobile", "tablet", "desktop", "unknown")
_ROBOTS = ("bot", "crawl", "spider", "slurp", "headless", "curl/", "python-", "wget/")
_TABLETS = ("ipad", "tablet", "kindle", "silk/", "playbook")
_MOBILES = ("mobi", "iphone", "ipod", "windows phone", "opera mini", "blackberry")
_DESKTOPS = ("windows nt", "macintosh", "x11", "cros", "linux")


def device_of(user_agent: str | None) -> str:
    ua = (user_agent or "").lower()[:512]
    if not ua or any(r in ua for r in _ROBOTS):
        return "unknown"
    if any(t in ua for t in _TABLETS):
        return "tablet"
    if any(m in ua for m in _MOBILES):
        return "mobile"
    if "android" in ua:  # Android without "Mobile" is a tablet (Google's convention)
        return "tablet"
    if any(d in ua for d in _DESKTOPS):
        return "desktop"
    return "unknown"
