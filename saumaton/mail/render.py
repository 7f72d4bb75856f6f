"""Rendering mail bodies from the Jinja templates in mail/templates/: `<name>.txt`
(plain text) and `<name>.html`, in Finnish or English with the pages' catalogs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from saumaton import i18n
from saumaton.config import Settings
from saumaton.mail.inline import qr_src

TEMPLATES = Path(__file__).parent / "templates"


def mail_language(lang: str | None, settings: Settings) -> str:
    """`lang` if we write mail in it, else the shop's default language."""
    if lang in i18n.LANGUAGES:
        return str(lang)
    return settings.default_language if settings.default_language in i18n.LANGUAGES \
        else i18n.DEFAULT_LANGUAGE


@pass_context
def _local_datetime(ctx: Context, value: datetime) -> str:
    return i18n.local_datetime(value, str(ctx["lang"]), str(ctx["timezone"]))


@lru_cache(maxsize=len(i18n.LANGUAGES))
def environment(lang: str) -> Environment:
    """One environment per language, its catalog installed once: rendering needs no
    shared state, so it is safe from any thread."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
        undefined=StrictUndefined, keep_trailing_newline=True,
        # The templates ship with the code: no stat of every file on every mail.
        auto_reload=False,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]  # i18n extension
        i18n.translations(lang), newstyle=True)
    env.filters.update(
        money=lambda cents: i18n.money(int(cents), lang),
        rate=lambda rate_bp: i18n.rate(int(rate_bp), lang),
        local_datetime=_local_datetime,
        qr_src=qr_src,
    )
    return env


def gettext(lang: str, message: str, **values: Any) -> str:
    text = i18n.translations(lang).gettext(message)
    return text % values if values else text


def render_mail(name: str, lang: str, settings: Settings,
                context: Mapping[str, Any]) -> tuple[str, str]:
    """(text, html) of template `name`; both see `lang`, `settings`, `timezone`."""
    env = environment(lang)
    ctx = {"lang": lang, "settings": settings, "timezone": settings.timezone, **context}
    text = env.get_template(f"{name}.txt").render(ctx)
    html = env.get_template(f"{name}.html").render(ctx)
    return text, html
