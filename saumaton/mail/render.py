"""Rendering mail bodies from the Jinja templates in mail/templates/: `<name>.txt`
(plain text) and `<name>.html`, in Finnish or English with the pages' catalogs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from gettext import NullTranslations
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
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


class FoldedGettext(Extension):
    """`_('literal')` without values translated when the template is compiled: the text
    the i18n extension's newstyle gettext would give at every render (the catalog's
    text, its `%%` as `%`; kept unescaped in an HTML template, as gettext's Markup is).
    A mail made half the CPU: each such call was three of Jinja's context calls."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        catalog: NullTranslations | None = getattr(self.environment, "mail_catalog", None)
        if catalog is None:
            yield from stream
            return
        autoescape = self.environment.autoescape
        html = bool(autoescape(stream.name) if callable(autoescape) else autoescape)
        window: list[Token] = []
        after_dot = False  # `x._(...)` is an attribute's call, not gettext
        for token in stream:
            window.append(token)
            if len(window) < 4:
                continue
            name, lparen, text, rparen = window
            if (not after_dot and name.type == "name" and name.value == "_"
                    and lparen.type == "lparen" and text.type == "string"
                    and rparen.type == "rparen"):
                folded = catalog.gettext(text.value) % {}
                window = [Token(text.lineno, "string", folded)]
                if html:
                    window += [Token(text.lineno, "pipe", "|"),
                               Token(text.lineno, "name", "safe")]
                yield from window
                window = []
                after_dot = False
                continue
            first = window.pop(0)
            after_dot = first.type == "dot"
            yield first
        yield from window


@lru_cache(maxsize=len(i18n.LANGUAGES))
def environment(lang: str) -> Environment:
    """One environment per language, its catalog installed once: rendering needs no
    shared state, so it is safe from any thread."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n", FoldedGettext], trim_blocks=True, lstrip_blocks=True,
        undefined=StrictUndefined, keep_trailing_newline=True,
        # The templates ship with the code: no stat of every file on every mail.
        auto_reload=False,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]  # i18n extension
        i18n.translations(lang), newstyle=True)
    env.extend(mail_catalog=i18n.translations(lang))  # read by FoldedGettext
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
