"""Finnish and English: the catalogs and number and date formatting, for pages and
e-mails alike (the language a web request asks for is chosen in `web.i18n`).

The catalogs are the gettext `.po` files under `saumaton/locale/<lang>/LC_MESSAGES/`:
`messages.po` plus one file per area (`shop.po`, `checkout.po`, `account.po`), merged.
There is no build step: at startup each `.po` is read with Babel and compiled in
memory to a `.mo` image, which `gettext.GNUTranslations` loads.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

from saumaton.core.money import format_rate

LANGUAGES = ("fi", "en")
DEFAULT_LANGUAGE = "fi"
# Babel locales used for numbers, currency and dates.
LOCALES: Mapping[str, str] = {"fi": "fi_FI", "en": "en_IE"}
LANGUAGE_NAMES: Mapping[str, str] = {"fi": "Suomi", "en": "English"}
LANG_COOKIE = "saumaton_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def N_(message: str) -> str:
    """Mark a string for translation without translating it yet."""
    return message


def catalog_files(lang: str) -> list[Path]:
    """messages.po first, then one .po per area (shop.po, checkout.po, …)."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    return sorted(folder.glob("*.po"), key=lambda p: (p.name != "messages.po", p.name))


def _compile(po_paths: list[Path], lang: str) -> gettext.GNUTranslations:
    catalog = None
    for path in po_paths:
        with path.open("rb") as f:
            part = read_po(f, locale=lang, domain="messages")
        if catalog is None:
            catalog = part
            continue
        for message in part:
            if message.id and message.id not in catalog:
                catalog[message.id] = message
    assert catalog is not None, f"no catalog for {lang}"
    buf = BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> gettext.GNUTranslations:
    """The compiled catalog of `lang` (read once per process)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}")
    return _compile(catalog_files(lang), lang)


def load_all() -> None:
    """Compile every catalog now, so a broken .po fails at startup, not mid-request."""
    for lang in LANGUAGES:
        translations(lang)


@lru_cache(maxsize=8192)  # Babel's formatting costs ~0.1 ms; pages show the same sums
def money(cents: int, lang: str) -> str:
    """12,90 € (fi) or €12.90 (en)."""
    return format_currency(Decimal(cents).scaleb(-2), "EUR", locale=LOCALES[lang])


@lru_cache(maxsize=256)
def rate(rate_bp: int, lang: str) -> str:
    """A VAT rate without the % sign: 2550 -> '25,5' (fi) or '25.5' (en)."""
    return format_decimal(Decimal(format_rate(rate_bp)), locale=LOCALES[lang])


@lru_cache(maxsize=256)  # a mail shows the order's time in its text and its HTML part
def local_datetime(at: datetime, lang: str, timezone: str) -> str:
    """Date and time in the shop's time zone, e.g. 14.3.2026 14.05.09 (fi)."""
    return format_datetime(at, "medium", tzinfo=ZoneInfo(timezone), locale=LOCALES[lang])


def local_date(at: datetime, lang: str, timezone: str) -> str:
    """The day in the shop's time zone, e.g. 14.3.2026 (fi) or Mar 14, 2026 (en)."""
    return format_date(at.astimezone(ZoneInfo(timezone)).date(), "medium",
                       locale=LOCALES[lang])


def parse_money(text: str) -> int | None:
    """What a cashier types ('20', '20,5', '20.50 €') in cents; None when empty.
    Raises ValueError for anything else (more than two decimals, letters)."""
    t = text.strip().replace("€", "").replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if not t:
        return None
    m = _MONEY.fullmatch(t)
    if m is None or t == ".":
        raise ValueError(text)
    return int(m[1] or "0") * 100 + int(((m[2] or "") + "00")[:2])


_MONEY = re.compile(r"([0-9]{0,6})(?:\.([0-9]{0,2}))?")


def localized(obj: object, field: str, lang: str) -> str:
    """`obj.<field>_en` on English pages when it is set, else `obj.<field>` (the Finnish
    text): product, variant and category names and descriptions, cart lines."""
    if lang == "en":
        english = getattr(obj, f"{field}_en", "")
        if english:
            return str(english)
    return str(getattr(obj, field, "") or "")
