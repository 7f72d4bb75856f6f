"""Server-rendered pages (webshop, POS, staff login): templates, errors, sessions.

Pages are thin: a route reads the request, calls service functions and renders
a template with what they return. Prices, totals, VAT, rounding and stock rules
come from the core; templates only format them.

The templates' `_()` reads the language of the page being rendered from a context
variable at call time. (A catalog installed on the environment per request is not
enough: a macro imported without context keeps the globals of the first render
that imported it, so its texts stayed in that first page's language.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    nodes,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import FormData

from saumaton import __version__
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError, Forbidden, NotAuthenticated
from saumaton.staff.services import authenticate
from saumaton.staff.sessions import note_failed_login, sign_in, sign_out
from saumaton.throttle import services as throttle
from saumaton.web import i18n
from saumaton.web.auth import (
    check_csrf,
    csrf_token,
    db_of,
    login_session,
    logout_session,
    session_actor,
    session_token,
)
from saumaton.web.i18n import N_
from saumaton.web.route_access import CUSTOMER_SIGN_IN, public
from saumaton.web.shopper import sign_out_shopper

TEMPLATES = Path(__file__).parent / "templates"

# Human messages for domain error codes; the service's English detail is the fallback.
ERROR_MESSAGES: Mapping[str, str] = {
    "unknown_code": N_("No product has the code %(code)s."),
    "invalid_credentials": N_("Wrong e-mail or password."),
    "csrf_failed": N_("The form expired. Reload the page and try again."),
    "forbidden": N_("You do not have permission for this."),
    "not_authenticated": N_("Log in first."),
    "product_not_found": N_("We could not find that product."),
    "variant_not_found": N_("We could not find that product."),
    "location_not_found": N_("There is no such store."),
    "no_pos_channel": N_("This location has no till."),
    "order_not_found": N_("There is no such receipt."),
    "not_found": N_("The page was not found."),
    "insufficient_cash": N_("The cash tendered is less than the amount due."),
    "card_not_confirmed": N_("Confirm that the card terminal approved the payment."),
    "unknown_variant": N_("This product is not in the catalogue."),
    "variant_inactive": N_("This product is not for sale."),
    "idempotency_key_reused": N_(
        "This sale was already paid with different contents. Start a new sale."),
    "no_vat_rate": N_("This product has no VAT rate in force; ask a manager."),
    "overpayment": N_("The payment is more than the amount due."),
    "payment_incomplete": N_("The payment does not cover the total."),
}
_ERROR_TITLES: Mapping[int, str] = {
    401: N_("Please log in"), 403: N_("No access"), 404: N_("Not found")}
_ERROR_TITLE = N_("Something went wrong")
# htmx swaps error responses too: forms come back with the errors next to fields.
HTMX_CONFIG = json.dumps({
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "[4]..", "swap": True, "error": False},
        {"code": "...", "swap": False, "error": True},
    ],
    "historyCacheSize": 0,
    # The Content-Security-Policy allows neither inline styles nor eval: htmx must not
    # inject its indicator <style> (site.css has the rules) nor evaluate hx-vals "js:".
    "includeIndicatorStyles": False,
    "allowEval": False,
})


@pass_context
def _money(ctx: Context, cents: int) -> str:
    return i18n.money(int(cents), str(ctx["lang"]))


@pass_context
def _rate(ctx: Context, rate_bp: int) -> str:
    return i18n.rate(int(rate_bp), str(ctx["lang"]))


@pass_context
def _datetime(ctx: Context, value: Any) -> str:
    settings: Settings = ctx["settings"]
    return i18n.local_datetime(value, str(ctx["lang"]), settings.timezone)


@pass_context
def _date(ctx: Context, value: Any) -> str:
    settings: Settings = ctx["settings"]
    return i18n.local_date(value, str(ctx["lang"]), settings.timezone)


_rendering_lang: ContextVar[str] = ContextVar("rendering_lang", default=i18n.DEFAULT_LANGUAGE)


def _gettext(message: str) -> str:
    return i18n.translations(_rendering_lang.get()).gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.translations(_rendering_lang.get()).ngettext(singular, plural, n)


# The pages' texts without variables, translated and formatted, by (language, text,
# autoescape): a page has dozens of them, and Jinja's own gettext looks each one up and
# formats it again on every call.
_translated: dict[tuple[str, str, bool], str] = {}
_TRANSLATED_MAX = 20_000


@pass_context
def _page_gettext(ctx: Context, message: str, **variables: Any) -> str:
    """Jinja's newstyle gettext (`_()` and `{% trans %}`): the text is always a %-format
    (so '%%' is '%'), escaped as Markup in an autoescaped template; without variables
    the result is kept."""
    lang = _rendering_lang.get()
    autoescape = bool(ctx.eval_ctx.autoescape)
    if variables:
        text = i18n.translations(lang).gettext(message)
        return (Markup(text) if autoescape else text) % variables
    key = (lang, message, autoescape)
    done = _translated.get(key)
    if done is None:
        text = i18n.translations(lang).gettext(message)
        done = (Markup(text) if autoescape else text) % {}
        if len(_translated) >= _TRANSLATED_MAX:  # a text made at run time, repeatedly
            _translated.clear()
        _translated[key] = done
    return done


class _FoldTexts(NodeTransformer):
    """`_('text')` and `{% trans %}text{% endtrans %}` without variables, translated when
    the template is compiled: the page's text as a constant of the template (Jinja then
    writes it out with the markup around it), no call per render."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def visit_Call(self, call: nodes.Call) -> nodes.Node:
        node = self.generic_visit(call)
        if not isinstance(node, nodes.Call):
            return node
        target, args = node.node, node.args
        if not (isinstance(target, nodes.Name) and target.name in ("_", "gettext")
                and target.ctx == "load" and len(args) == 1
                and isinstance(args[0], nodes.Const) and isinstance(args[0].value, str)
                and not node.kwargs and node.dyn_args is None and node.dyn_kwargs is None):
            return node
        try:
            # What `_page_gettext` gives: the translation as a %-format (so '%%' is '%'),
            # Markup in an autoescaped template.
            text = i18n.translations(self.lang).gettext(args[0].value) % {}
        except (KeyError, TypeError, ValueError):
            return node  # fails at render time, as it did
        return nodes.MarkSafeIfAutoescape(nodes.Const(text, lineno=node.lineno),
                                          lineno=node.lineno)


class _PageEnvironment(Environment):
    """The pages' templates, compiled for one language (`lang`): texts without variables
    are translated once, at compile time (`_FoldTexts`)."""

    lang: str | None = None

    def _parse(self, source: str, name: str | None, filename: str | None
               ) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        if self.lang is not None:
            tree = _FoldTexts(self.lang).visit(tree)
            tree.set_environment(self)
        return tree


def _build_env(lang: str | None = None, shared: Environment | None = None
               ) -> _PageEnvironment:
    env = _PageEnvironment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html",)),
        extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
        undefined=StrictUndefined,
        # The templates ship with the code: no file checks per render (a changed
        # template comes with a restart, as changed code does).
        auto_reload=False,
    )
    env.lang = lang
    env.filters.update(money=_money, rate=_rate, local_datetime=_datetime, local_date=_date)
    env.install_gettext_callables(  # type: ignore[attr-defined]  # i18n extension
        _gettext, _ngettext, newstyle=True)
    env.globals.update(gettext=_page_gettext, _=_page_gettext)
    if shared is not None:  # the same globals and filters, whatever is added later
        env.globals = shared.globals
        env.filters = shared.filters
    return env


_env = _build_env()
# One compiled copy of the templates per language, sharing `_env`'s globals and filters.
_envs: dict[str, Environment] = {lang: _build_env(lang, _env) for lang in i18n.LANGUAGES}


def _env_for(lang: str) -> Environment:
    return _envs.get(lang, _env)


# Fragments that show nothing but texts in the page's language, the app's version and
# the CSRF token (the chat widget on every shop page): rendered once per language.
_fragments: dict[tuple[str, str], str] = {}
_CSRF_MARK = "csrf-token-goes-here-0f3a9c"


@pass_context
def _lang_fragment(ctx: Context, name: str) -> Markup:
    """`{{ lang_fragment("service/_widget.html") }}`: the template `name` rendered with
    only `lang`, `version` and `csrf_token()` (the page's own token put in each time)."""
    lang = str(ctx["lang"])
    html = _fragments.get((name, lang))
    if html is None:
        html = _env_for(lang).get_template(name).render(lang=lang, version=__version__,
                                              csrf_token=lambda: _CSRF_MARK)
        _fragments[(name, lang)] = html
    return Markup(html.replace(_CSRF_MARK, str(escape(ctx["csrf_token"]()))))


_env.globals["lang_fragment"] = _lang_fragment


def _shop_field(name: str, label: str, values: Mapping[str, Any], errors: Mapping[str, Any],
                type: str = "text", autocomplete: str = "", required: bool = True,
                hint: str = "", inputmode: str = "", note: str = "") -> Markup:
    """`{{ shop_field('email', _('E-mail'), values, errors, type='email', ...) }}`: one
    labelled input of a shop form with its error next to it (aria-describedby); `note`
    says when a field that is not always required is (it replaces "optional"). The
    HTML the Jinja macro it replaces gave, built here: a macro call cost ~20 µs."""
    e = escape
    error = errors.get(name)
    out = [f'<div class="field{" invalid" if error else ""}">\n'
           f'  <label for="{e(name)}">{e(label)}']
    if note:
        out.append(f' <small data-testid="note-{e(name)}">({e(note)})</small>')
    elif not required:
        optional = i18n.translations(_rendering_lang.get()).gettext("optional") % {}
        out.append(f" <small>({optional})</small>")
    out.append("</label>\n")
    if hint:
        out.append(f'<small id="{e(name)}-hint" class="hint">{e(hint)}</small>')
    out.append(f'  <input id="{e(name)}" name="{e(name)}" type="{e(type)}" '
               f'value="{e(values.get(name, ""))}"\n')
    if autocomplete:
        out.append(f'autocomplete="{e(autocomplete)}"')
    if inputmode:
        out.append(f' inputmode="{e(inputmode)}"')
    if required:
        out.append(" required")
    if error:
        out.append(f' aria-invalid="true" aria-describedby="{e(name)}-error'
                   f'{f" {e(name)}-hint" if hint else ""}"')
    elif hint:
        out.append(f' aria-describedby="{e(name)}-hint"')
    out.append(">\n")
    if error:
        out.append(f'<p class="error" id="{e(name)}-error" data-testid="error-{e(name)}">'
                   f'{e(errors[name])}</p>')
    out.append("</div>")
    return Markup("".join(out))


_env.globals["shop_field"] = _shop_field


def add_template_global(name: str, value: Any) -> None:
    """A function or value every template can use (e.g. the back office's navigation)."""
    _env.globals[name] = value


# --- language ---------------------------------------------------------------------------

def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def page_lang(request: Request) -> str:
    lang = getattr(request.state, "lang", None)
    if lang is None:
        lang, chosen = i18n.choose_language(request, settings_of(request).default_language)
        request.state.lang = lang
        request.state.lang_chosen = chosen
    return str(lang)


def gettext(request: Request, message: str, **values: Any) -> str:
    text = i18n.translations(page_lang(request)).gettext(message)
    return text % values if values else text


def remember_language(request: Request, response: Response) -> None:
    page_lang(request)
    if getattr(request.state, "lang_chosen", False):
        response.set_cookie(i18n.LANG_COOKIE, request.state.lang, max_age=365 * 24 * 3600,
                            httponly=True, samesite="lax")


# The language links of a page, by its path and query string (a shop page is asked for
# with the same few again and again).
_lang_links_of: dict[tuple[str, bytes], list[dict[str, str]]] = {}
_LANG_LINKS_MAX = 5000


def _lang_links(request: Request) -> list[dict[str, str]]:
    key = (str(request.scope.get("path", "")), bytes(request.scope.get("query_string", b"")))
    links = _lang_links_of.get(key)
    if links is None:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        links = []
        for code in i18n.LANGUAGES:
            query = urlencode([*params, ("lang", code)])
            links.append({"code": code, "name": i18n.LANGUAGE_NAMES[code],
                          "url": f"{request.url.path}?{query}"})
        if len(_lang_links_of) >= _LANG_LINKS_MAX:
            _lang_links_of.clear()
        _lang_links_of[key] = links
    return links  # the templates only read them


# --- rendering --------------------------------------------------------------------------

def is_htmx(request: Request) -> bool:
    """An htmx request that swaps a fragment (a history restore wants the whole page)."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, *,
           status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    lang = page_lang(request)
    ctx: dict[str, Any] = {
        "request": request, "lang": lang, "lang_links": _lang_links(request),
        "settings": settings_of(request), "version": __version__,
        "csrf_token": lambda: csrf_token(request), "htmx_config": HTMX_CONFIG,
        "staff": getattr(request.state, "actor", None), "title": "",
    }
    ctx.update(context or {})
    token = _rendering_lang.set(lang)
    try:
        html = _env_for(lang).get_template(template).render(ctx)
    finally:
        _rendering_lang.reset(token)
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    response.headers["Vary"] = "Accept-Language, Cookie"
    remember_language(request, response)
    return response


def error_message(request: Request, exc: DomainError, own: Mapping[str, str] | None = None,
                  **values: str) -> str:
    """The error in the page's language: a channel's `own` wording of the code first,
    then the shared one, else the service's English detail."""
    message = (own or {}).get(exc.code) or ERROR_MESSAGES.get(exc.code)
    if message is None:
        return exc.detail
    text = i18n.translations(page_lang(request)).gettext(message)
    try:
        return text % {**{k: str(v) for k, v in exc.extra.items()}, **values}
    except (KeyError, ValueError, TypeError):
        return exc.detail


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    title = gettext(request, _ERROR_TITLES.get(status, _ERROR_TITLE))
    if is_htmx(request):
        # Show it above the form the request came from, keeping what is on screen.
        return render(request, "_alert.html", {"message": message}, status=status,
                      headers={"HX-Retarget": "#alert", "HX-Reswap": "innerHTML"})
    return render(request, "error.html", {"title": title, "message": message,
                                          "status": status}, status=status)


def login_redirect(request: Request) -> Response:
    # Back to this page after logging in; a form post goes back to the till.
    back = request.url.path if request.method == "GET" else "/pos/"
    target = "/staff/login?" + urlencode({"next": back})
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def domain_error_response(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, NotAuthenticated):
        if exc.code == CUSTOMER_SIGN_IN:  # an account page: the shopper's sign-in
            back = request.url.path if request.method == "GET" else "/account/"
            return RedirectResponse("/account/login?" + urlencode({"next": back}),
                                    status_code=303)
        return login_redirect(request)
    return error_page(request, exc.status, error_message(request, exc))


class PageRoute(APIRoute):
    """Page routes answer with HTML: a domain error becomes an error page (or a
    login redirect), invalid query or path values a 404 page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except DomainError as exc:
                return domain_error_response(request, exc)
            except PoolTimeout:
                response = error_page(request, 503, gettext(request, N_(
                    "The shop is very busy right now. Please try again in a moment.")))
                response.headers["Retry-After"] = "2"
                return response
            except RequestValidationError:
                return error_page(request, 404, gettext(request, N_("The page was not found.")))

        return handler


def page_router(prefix: str = "", *, dependencies: Sequence[Any] = ()) -> APIRouter:
    """A router of pages; `dependencies=[public("why")]` when all its pages are public."""
    return APIRouter(prefix=prefix, include_in_schema=False, route_class=PageRoute,
                     dependencies=list(dependencies))


# --- staff sessions ---------------------------------------------------------------------

async def require_staff(request: Request) -> Actor:
    actor = await session_actor(request)
    if actor is None:
        raise NotAuthenticated("log in first", code="not_authenticated")
    return actor


async def checked_form(request: Request) -> FormData:
    """The posted form, after checking the session's CSRF token (form field
    `csrf_token` or, for htmx, the X-CSRF-Token header)."""
    form = await request.form()
    submitted = request.headers.get("x-csrf-token") or form.get("csrf_token")
    check_csrf(request, submitted if isinstance(submitted, str) else None)
    return form


def safe_next(value: object, default: str = "/staff/") -> str:
    """Only same-site paths: '/pos/', never '//evil.example' or 'https://…'."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") \
            and "\\" not in value and len(value) < 300:
        return value
    return default


router = page_router()


@router.get("/", dependencies=[public("a redirect to the webshop")])
async def root() -> RedirectResponse:
    return RedirectResponse("/shop/", status_code=302)


@router.get("/staff/login", dependencies=[public("the staff login form")])
async def login_form(request: Request) -> HTMLResponse:
    return render(request, "staff/login.html", {
        "title": gettext(request, N_("Staff login")), "email": "", "errors": {},
        "next": safe_next(request.query_params.get("next"))})


@router.post("/staff/login", dependencies=[public(
    "signs a person in: CSRF-checked, the password decides")])
async def login(request: Request) -> Response:
    from saumaton.web import throttling  # it imports this module
    form = await request.form()
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    next_url = safe_next(form.get("next"))
    errors: dict[str, str] = {}
    status = 422
    submitted = form.get("csrf_token")
    try:
        check_csrf(request, submitted if isinstance(submitted, str) else None)
    except Forbidden as exc:
        errors["form"] = error_message(request, exc)
        status = 403
    if not errors:
        if not email:
            errors["email"] = gettext(request, N_("Enter your e-mail address."))
        if not password:
            errors["password"] = gettext(request, N_("Enter your password."))
    headers: dict[str, str] = {}
    refused = None
    if not errors:
        # Counted before the password is checked: parallel guesses cannot pass the
        # limit (docs/security.md).
        refused = await throttling.attempt(request, "staff", email)
        if refused is not None:
            if throttling.wants_json(request):
                return throttling.json_refusal(refused)
            errors["form"] = throttling.message(request, refused)
            status, headers = 429, throttling.retry_headers(refused)
    if not errors:
        db = db_of(request)
        try:
            async with db.reader() as s:
                actor = await authenticate(s, email[:320], password[:1000])
        except DomainError as exc:
            errors[exc.field or "form"] = error_message(request, exc)
            status = exc.status
            async with db.uow() as uow:
                staff_id = exc.extra.get("staff_id")
                await note_failed_login(uow, email, staff_id if isinstance(staff_id, int)
                                        else None)
                await uow.commit()
        else:
            async with db.uow() as uow:
                token = await sign_in(uow, actor, request.headers.get("user-agent", ""))
                await throttle.succeeded(uow, "staff", email, throttling.client_address(
                    request))
                await uow.commit()
            await sign_out_shopper(request)  # the cookie is replaced whole
            login_session(request, token)
            return RedirectResponse(next_url, status_code=303)
    return render(request, "staff/login.html", {
        "title": gettext(request, N_("Staff login")), "email": email, "errors": errors,
        "next": next_url}, status=status, headers=headers)


@router.post("/staff/logout", dependencies=[public(
    "ends the caller's own session, if any: CSRF-checked")])
async def logout(request: Request) -> Response:
    await checked_form(request)
    token = session_token(request)
    if token:
        async with db_of(request).uow() as uow:
            await sign_out(uow, token)
            await uow.commit()
    # The cookie is cleared whole: a shopper signed in on this browser ends server-side
    # too, or a copy of the cookie would still hold a live shopper session.
    await sign_out_shopper(request)
    logout_session(request)
    return RedirectResponse("/staff/login", status_code=303)


def install_shop(app: FastAPI) -> None:
    """The webshop's own routes, first of all the app's: a request is matched against
    the routes in order, and the API's hundreds before them cost every shop page more
    than its own work did (the shop's paths meet no API path)."""
    from saumaton.web.shop.checkout import router as checkout_router
    from saumaton.web.shop.routes import router as shop_router
    from saumaton.web.shop.tryon import router as try_router

    app.include_router(shop_router)
    app.include_router(checkout_router)
    app.include_router(try_router)


def install(app: FastAPI) -> None:
    """Mount page routes (webshop, POS, staff login) and load the translations.
    (`install_shop` has mounted the webshop's, before the API's.)"""
    from saumaton.web.account import router as account_router
    from saumaton.web.backoffice import customers as backoffice_customers
    from saumaton.web.consent import router as consent_router
    from saumaton.web.pos import api as pos_api
    from saumaton.web.pos import customers as pos_customers
    from saumaton.web.pos import drawer as pos_drawer
    from saumaton.web.pos import handover as pos_handover
    from saumaton.web.pos import offline as pos_offline
    from saumaton.web.pos import returns as pos_returns
    from saumaton.web.pos import tries as pos_tries
    from saumaton.web.pos.routes import router as pos_router

    i18n.load_all()
    app.include_router(router)
    # Before the till's /pos/{code} routes: /pos/sw.js is not a store.
    for module in (pos_offline, pos_api, pos_drawer, pos_customers, pos_handover, pos_tries,
                   pos_returns):
        app.include_router(module.router)
    app.include_router(pos_router)
    app.include_router(consent_router)
    app.include_router(account_router)
    app.include_router(backoffice_customers.router)
    from saumaton.web.backoffice import giftcards as backoffice_giftcards
    from saumaton.web.backoffice import returns as backoffice_returns
    app.include_router(backoffice_returns.router)
    app.include_router(backoffice_giftcards.router)
    from saumaton.web.service import router as service_router  # the service desk
    app.include_router(service_router)
    # After the back office's /backoffice/customers/duplicates: the customer page.
    from saumaton.web import board as board_pages
    from saumaton.web import nps as nps_pages
    from saumaton.web import timeline as timeline_pages
    app.include_router(timeline_pages.router)
    app.include_router(board_pages.router)  # /pos/{code}/board, /backoffice/board, /board
    app.include_router(nps_pages.router)  # the public /nps/{token} pages
    from saumaton.web import unsubscribe as unsubscribe_pages
    app.include_router(unsubscribe_pages.router)  # the public /unsubscribe/{token} pages
    from saumaton.web import fulfilment as fulfilment_pages
    app.include_router(fulfilment_pages.router)  # /pos/{code}/orders, /backoffice/orders
    from saumaton.web.backoffice import home as backoffice_home
    app.include_router(backoffice_home.router)  # /staff/, /backoffice/, /backoffice/reports
    for router_module in _backoffice_feature_routers():
        app.include_router(router_module)
    _html_not_found(app)


_INCLUDED_ABOVE = frozenset({"access", "customers", "giftcards", "home", "returns"})


def _backoffice_feature_routers() -> list[APIRouter]:
    """The `router` of every other module in saumaton.web.backoffice (catalogue, prices,
    stock, staff, settings, import/export…), in module-name order: a feature adds its
    pages by adding a module."""
    import importlib
    import pkgutil

    from saumaton.web import backoffice

    routers = []
    for info in sorted(pkgutil.iter_modules(backoffice.__path__), key=lambda i: i.name):
        if info.name in _INCLUDED_ABOVE or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"saumaton.web.backoffice.{info.name}")
        router_of = getattr(module, "router", None)
        if isinstance(router_of, APIRouter):
            routers.append(router_of)
    return routers


def _html_not_found(app: FastAPI) -> None:
    """An unknown page under the staff and shop paths answers with the HTML 404 page; the
    API (and everything else) keeps its application/problem+json answers."""
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from saumaton.api.problems import http_problem

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if exc.status_code == 404 and path.startswith(_HTML_PREFIXES):
            return error_page(request, 404, gettext(request, N_("The page was not found.")))
        return http_problem(exc, request)

    app.add_exception_handler(StarletteHTTPException, handler)


_HTML_PREFIXES = ("/backoffice", "/staff")
