"""The language of a web request: `?lang=fi|en` (remembered in a cookie), else the
cookie, else the browser's Accept-Language, else the configured default (fi).
The catalogs and formatting themselves are `saumaton.i18n` (e-mails use them too),
re-exported here for the pages."""

from __future__ import annotations

from babel.core import negotiate_locale
from starlette.requests import Request

from saumaton.i18n import (
    DEFAULT_LANGUAGE as DEFAULT_LANGUAGE,
)
from saumaton.i18n import (
    LANG_COOKIE as LANG_COOKIE,
)
from saumaton.i18n import (
    LANGUAGE_NAMES as LANGUAGE_NAMES,
)
from saumaton.i18n import (
    LANGUAGES as LANGUAGES,
)
from saumaton.i18n import (
    LOCALE_DIR as LOCALE_DIR,
)
from saumaton.i18n import (
    LOCALES as LOCALES,
)
from saumaton.i18n import (
    N_ as N_,
)
from saumaton.i18n import (
    catalog_files as catalog_files,
)
from saumaton.i18n import (
    load_all as load_all,
)
from saumaton.i18n import (
    local_date as local_date,
)
from saumaton.i18n import (
    local_datetime as local_datetime,
)
from saumaton.i18n import (
    money as money,
)
from saumaton.i18n import (
    parse_money as parse_money,
)
from saumaton.i18n import (
    rate as rate,
)
from saumaton.i18n import (
    translations as translations,
)


def _accept_language(header: str) -> list[str]:
    """Accept-Language values, most preferred first ('fi-FI;q=0.8' -> 'fi_FI')."""
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if q > 0:
            prefs.append((-q, i, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(prefs)]


def choose_language(request: Request, default: str = DEFAULT_LANGUAGE) -> tuple[str, bool]:
    """(language, chosen_now): chosen_now is True when ?lang= picked it, so the
    caller stores it in the cookie."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return str(asked), True
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return str(cookie), False
    header = request.headers.get("accept-language", "")
    if header:
        found = negotiate_locale(_accept_language(header), list(LANGUAGES), sep="_")
        if found:
            return found.split("_")[0], False
    return (default if default in LANGUAGES else DEFAULT_LANGUAGE), False
