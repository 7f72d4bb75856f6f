"""Staff and security in the back office: the staff list, inviting a person by e-mail,
a person's page (roles per store, disable/enable, password reset link, API tokens) and
the audit log viewer; the public pages of the e-mailed links (choose a password) and
"forgot your password?".

Thin: the rules are in `staff.admin`, `staff.sessions` and `audit.services`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from saumaton import i18n
from saumaton.audit.models import AuditEntry
from saumaton.audit.services import AuditQuery, known_actions, known_subject_types, search
from saumaton.core.actor import ROLES, Actor
from saumaton.core.errors import DomainError
from saumaton.locations.services import list_locations
from saumaton.staff import admin
from saumaton.staff.services import staff_names
from saumaton.staff.sessions import sign_in
from saumaton.web import throttling
from saumaton.web.auth import db_of, login_session
from saumaton.web.backoffice.access import requires
from saumaton.web.i18n import N_
from saumaton.web.pages import (
    checked_form,
    error_message,
    error_page,
    gettext,
    page_lang,
    page_router,
    render,
    settings_of,
)
from saumaton.web.route_access import public
from saumaton.web.shopper import sign_out_shopper

router = page_router()
BASE = "/backoffice/staff"
PER_PAGE = 50

ROLE_NAMES = {
    "owner": N_("Owner"), "manager": N_("Manager"), "cashier": N_("Cashier"),
    "service": N_("Customer service"), "finance": N_("Finance"),
}
STATE_NAMES = {"active": N_("Active"), "disabled": N_("Disabled"),
               "invited": N_("Invited")}
MESSAGES = {
    "staff_not_found": N_("There is no such staff member."),
    "name_required": N_("Enter the person's name."),
    "name_too_long": N_("Use at most 200 characters."),
    "invalid_email": N_("Enter a valid e-mail address."),
    "staff_exists": N_("A staff member already has this e-mail address."),
    "role_required": N_("Choose a role."),
    "invalid_role": N_("Choose a role from the list."),
    "location_not_found": N_("Choose a store from the list."),
    "grant_exists": N_("The person already has this role there."),
    "grant_not_found": N_("That role was already removed."),
    "last_owner": N_("The business must keep at least one owner: make someone else "
                     "an owner first."),
    "disable_self": N_("You cannot disable your own account."),
    "staff_disabled": N_("The person is disabled; enable them first."),
    "not_invited": N_("The person has already chosen a password."),
    "token_name": N_("Name the token after what uses it, e.g. \"accounting export\"."),
    "token_not_found": N_("There is no such token."),
    "weak_password": N_("Use at least %(min)s characters."),
    "password_mismatch": N_("The passwords differ: type the same password twice."),
    "link_invalid": N_("This link is not valid. Ask the owner for a new one."),
    "link_expired": N_("This link has expired. Ask for a new one."),
    "link_used": N_("This link was used already. Sign in, or ask for a new link."),
}
NOTICES = {
    "invited": N_("The invitation was sent by e-mail."),
    "roles": N_("The roles were changed."),
    "disabled": N_("The person is disabled: their sessions and API tokens stopped working."),
    "enabled": N_("The person may sign in again."),
    "reset": N_("A link to choose a new password was sent by e-mail."),
    "revoked": N_("The token was revoked."),
}


def _msg(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


def role_name(request: Request, role: str) -> str:
    return gettext(request, ROLE_NAMES[role]) if role in ROLE_NAMES else role


async def _locations(request: Request) -> dict[int, str]:
    async with db_of(request).reader() as s:
        return {loc.id: loc.name for loc in await list_locations(s)}


def _grant_text(request: Request, g: admin.Grant, places: dict[int, str]) -> str:
    where = (places.get(g.location_id, str(g.location_id)) if g.location_id is not None
             else gettext(request, N_("every store")))
    return f"{role_name(request, g.role)} · {where}"


def _parse_location(raw: object) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() else None


# --- the staff list and invitations -----------------------------------------------------

@router.get(BASE)
async def staff_list(request: Request, actor: Annotated[Actor, requires("staff.read")],
                     done: Annotated[str, Query(max_length=16)] = "") -> Response:
    async with db_of(request).reader() as s:
        people = await admin.list_staff(s, actor)
    places = await _locations(request)
    rows = [{"m": m, "grants": [_grant_text(request, g, places) for g in m.grants],
             "state": gettext(request, STATE_NAMES[m.state])} for m in people]
    notice = gettext(request, NOTICES[done]) if done in NOTICES else ""
    return render(request, "backoffice/staff_list.html", {
        "title": gettext(request, N_("Staff")), "rows": rows, "notice": notice,
        "may_write": actor.can("staff.write"), "nav_key": "staff"})


async def _invite_form(request: Request, *, values: dict[str, str] | None = None,
                       errors: dict[str, str] | None = None, status: int = 200) -> Response:
    places = await _locations(request)
    return render(request, "backoffice/staff_invite.html", {
        "title": gettext(request, N_("Invite a person")),
        "values": values or {"role": "cashier", "location": ""},
        "errors": errors or {}, "roles": [(r, role_name(request, r)) for r in ROLES],
        "places": sorted(places.items(), key=lambda p: p[1]), "nav_key": "staff"},
        status=status)


@router.get(f"{BASE}/invite")
async def invite_form(request: Request,
                      actor: Annotated[Actor, requires("staff.write")]) -> Response:
    return await _invite_form(request)


@router.post(f"{BASE}/invite")
async def invite(request: Request,
                 actor: Annotated[Actor, requires("staff.write")]) -> Response:
    form = await checked_form(request)
    values = {k: str(form.get(k) or "").strip()[:400]
              for k in ("name", "email", "role", "location")}
    try:
        async with db_of(request).uow() as uow:
            member = await admin.invite(
                uow, actor, email=values["email"], name=values["name"],
                grants=[(values["role"], _parse_location(values["location"]))],
                lang=page_lang(request), settings=settings_of(request))
            await uow.commit()
    except DomainError as exc:
        problems: list[DomainError] = exc.extra.get("errors") or [exc]
        errors: dict[str, str] = {}
        for p in problems:
            field = p.field if p.field in ("name", "email", "role", "location") else "form"
            errors.setdefault(field, _msg(request, p))
        return await _invite_form(request, values=values, errors=errors, status=422)
    return RedirectResponse(f"{BASE}/{member.id}?done=invited", status_code=303)


# --- a person ---------------------------------------------------------------------------

async def _person(request: Request, actor: Actor, staff_id: int, *,
                  errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                  notice: str = "", new_token: str = "", status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        try:
            member = await admin.get_member(s, actor, staff_id)
        except DomainError as exc:
            if exc.status == 404:
                return error_page(request, 404, _msg(request, exc))
            raise
        tokens = await admin.list_tokens(s, actor, staff_id)
        names = await staff_names(s, [member.disabled_by] if member.disabled_by else [])
    places = await _locations(request)
    return render(request, "backoffice/staff_person.html", {
        "title": member.name, "m": member, "tokens": tokens,
        "state": gettext(request, STATE_NAMES[member.state]),
        "grants": [(g, _grant_text(request, g, places)) for g in member.grants],
        "roles": [(r, role_name(request, r)) for r in ROLES],
        "places": sorted(places.items(), key=lambda p: p[1]),
        "disabled_by": names.get(member.disabled_by, member.disabled_by),
        "errors": errors or {}, "values": values or {"role": "cashier", "location": ""},
        "notice": notice, "new_token": new_token, "may_write": actor.can("staff.write"),
        "is_self": actor.staff_id == staff_id, "nav_key": "staff",
        "audit_url": "/backoffice/audit?" + urlencode(
            {"subject_type": "staff", "subject_id": staff_id}),
        "may_audit": actor.can("audit.read")}, status=status)


@router.get(f"{BASE}/{{staff_id}}")
async def person(request: Request, staff_id: int,
                 actor: Annotated[Actor, requires("staff.read")],
                 done: Annotated[str, Query(max_length=16)] = "") -> Response:
    notice = gettext(request, NOTICES[done]) if done in NOTICES else ""
    return await _person(request, actor, staff_id, notice=notice)


def _done(staff_id: int, what: str) -> RedirectResponse:
    return RedirectResponse(f"{BASE}/{staff_id}?done={what}", status_code=303)


def _field_error(request: Request, exc: DomainError, known: tuple[str, ...],
                 default: str) -> dict[str, str]:
    return {exc.field if exc.field in known else default: _msg(request, exc)}


@router.post(f"{BASE}/{{staff_id}}/roles")
async def change_roles(request: Request, staff_id: int,
                       actor: Annotated[Actor, requires("staff.write")]) -> Response:
    form = await checked_form(request)
    remove = str(form.get("remove") or "").strip()
    values = {"role": str(form.get("role") or "")[:20],
              "location": str(form.get("location") or "")[:20]}
    try:
        async with db_of(request).uow() as uow:
            if remove:
                if not remove.isdigit():
                    return error_page(request, 404, _msg(request, DomainError(
                        "no such role", code="grant_not_found")))
                await admin.remove_grant(uow, actor, staff_id, int(remove))
            else:
                await admin.add_grant(uow, actor, staff_id, values["role"],
                                      _parse_location(values["location"]))
            await uow.commit()
    except DomainError as exc:
        if exc.code == "staff_not_found":
            return error_page(request, 404, _msg(request, exc))
        errors = ({"grants": _msg(request, exc)} if remove
                  else _field_error(request, exc, ("role", "location"), "role"))
        return await _person(request, actor, staff_id, errors=errors, values=values,
                             status=exc.status if exc.status != 404 else 422)
    return _done(staff_id, "roles")


async def _simple(request: Request, actor: Actor, staff_id: int, what: str) -> Response:
    await checked_form(request)
    settings = settings_of(request)
    try:
        async with db_of(request).uow() as uow:
            if what == "disabled":
                await admin.disable(uow, actor, staff_id)
            elif what == "enabled":
                await admin.enable(uow, actor, staff_id)
            else:
                await admin.send_password_reset(uow, actor, staff_id, lang=page_lang(request),
                                                settings=settings)
            await uow.commit()
    except DomainError as exc:
        if exc.code == "staff_not_found":
            return error_page(request, 404, _msg(request, exc))
        return await _person(request, actor, staff_id, errors={"state": _msg(request, exc)},
                             status=exc.status)
    return _done(staff_id, what)


@router.post(f"{BASE}/{{staff_id}}/disable")
async def disable(request: Request, staff_id: int,
                  actor: Annotated[Actor, requires("staff.write")]) -> Response:
    return await _simple(request, actor, staff_id, "disabled")


@router.post(f"{BASE}/{{staff_id}}/enable")
async def enable(request: Request, staff_id: int,
                 actor: Annotated[Actor, requires("staff.write")]) -> Response:
    return await _simple(request, actor, staff_id, "enabled")


@router.post(f"{BASE}/{{staff_id}}/reset")
async def send_reset(request: Request, staff_id: int,
                     actor: Annotated[Actor, requires("staff.write")]) -> Response:
    return await _simple(request, actor, staff_id, "reset")


@router.post(f"{BASE}/{{staff_id}}/tokens")
async def create_token(request: Request, staff_id: int,
                       actor: Annotated[Actor, requires("staff.write")]) -> Response:
    form = await checked_form(request)
    name = str(form.get("token_name") or "")[:300]
    try:
        async with db_of(request).uow() as uow:
            _, token = await admin.issue_token(uow, actor, staff_id, name)
            await uow.commit()
    except DomainError as exc:
        if exc.code == "staff_not_found":
            return error_page(request, 404, _msg(request, exc))
        return await _person(request, actor, staff_id,
                             errors={"token_name": _msg(request, exc)},
                             values={"token_name": name, "role": "", "location": ""},
                             status=exc.status)
    # Shown once, on this answer only (not a redirect: it is never stored anywhere).
    response = await _person(request, actor, staff_id, new_token=token, notice=gettext(
        request, N_("The token was created. Copy it now: it is not shown again.")))
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post(f"{BASE}/{{staff_id}}/tokens/{{token_id}}/revoke")
async def revoke_token(request: Request, staff_id: int, token_id: int,
                       actor: Annotated[Actor, requires("staff.write")]) -> Response:
    await checked_form(request)
    try:
        async with db_of(request).uow() as uow:
            await admin.revoke_token(uow, actor, staff_id, token_id)
            await uow.commit()
    except DomainError as exc:
        if exc.status == 404:
            return error_page(request, 404, _msg(request, exc))
        raise
    return _done(staff_id, "revoked")


# --- the audit log ----------------------------------------------------------------------

def _label(key: str) -> str:
    for suffix in ("_cents", "_bp"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return key.replace("_", " ")


def _value(key: str, value: Any, lang: str) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else ("✓" if value else "✗")
    if isinstance(value, int) and key.endswith("_cents"):
        return i18n.money(value, lang)
    if isinstance(value, int) and key.endswith("_bp"):
        return i18n.rate(value, lang)
    if isinstance(value, dict):
        pair = next(((a, b) for a, b in (("old", "new"), ("before", "after"), ("from", "to"))
                     if a in value and b in value), None)
        if pair:
            return f"{_value(key, value[pair[0]], lang)} → {_value(key, value[pair[1]], lang)}"
        return ", ".join(f"{_label(k)} {_value(k, v, lang)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_value(key, v, lang) for v in value)
    return str(value)


def describe(data: dict[str, Any], lang: str) -> list[str]:
    """An audit entry's data, readably: {"price_cents": {"old": 1290, "new": 990}} reads
    "price 12,90 € → 9,90 €"; amounts in cents as money, rates as per cents."""
    out = []
    for key, value in data.items():
        if key.startswith("old_") and f"new_{key[4:]}" in data:
            out.append(f"{_label(key[4:])} {_value(key[4:], value, lang)} → "
                       f"{_value(key[4:], data[f'new_{key[4:]}'], lang)}")
        elif key.startswith("new_") and f"old_{key[4:]}" in data:
            continue
        else:
            out.append(f"{_label(key)} {_value(key, value, lang)}")
    return out


@dataclass(frozen=True)
class AuditRow:
    entry: AuditEntry
    who: str
    details: list[str]


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


@router.get("/backoffice/audit")
async def audit_log(
    request: Request, actor: Annotated[Actor, requires("audit.read")],
    person: Annotated[str, Query(max_length=20)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    subject_type: Annotated[str, Query(max_length=32)] = "",
    subject_id: Annotated[str, Query(max_length=20)] = "",
    since: Annotated[str, Query(max_length=10, alias="from")] = "",
    until: Annotated[str, Query(max_length=10, alias="to")] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    values = {"person": person.strip(), "action": action.strip(),
              "subject_type": subject_type.strip(), "subject_id": subject_id.strip(),
              "from": since.strip(), "to": until.strip()}
    errors: dict[str, str] = {}
    if values["person"] and not values["person"].isdigit():
        errors["person"] = gettext(request, N_("Choose a person from the list."))
    if values["subject_id"] and not values["subject_id"].isdigit():
        errors["subject_id"] = gettext(request, N_("An id is a whole number."))
    day_from = _day(values["from"]) if values["from"] else None
    day_to = _day(values["to"]) if values["to"] else None
    if values["from"] and day_from is None:
        errors["from"] = gettext(request, N_("Give a date as YYYY-MM-DD."))
    if values["to"] and day_to is None:
        errors["to"] = gettext(request, N_("Give a date as YYYY-MM-DD."))
    if day_from and day_to and day_to < day_from:
        errors["to"] = gettext(request, N_("The end is before the start."))
    tz = ZoneInfo(settings_of(request).timezone)
    query = AuditQuery(
        staff_id=int(values["person"]) if values["person"].isdigit() else None,
        action=values["action"], subject_type=values["subject_type"],
        subject_id=int(values["subject_id"]) if values["subject_id"].isdigit() else None,
        since=datetime.combine(day_from, time(), tz) if day_from else None,
        until=datetime.combine(day_to + timedelta(days=1), time(), tz) if day_to else None)
    lang = page_lang(request)
    async with db_of(request).reader() as s:
        entries, more = ([], False) if errors else await search(
            s, actor, query, page=page, per_page=PER_PAGE)
        names = await staff_names(s, [e.actor for e in entries])
        actions = await known_actions(s)
        subject_types = await known_subject_types(s)
        people = await admin.staff_choices(s)
    rows = [AuditRow(e, names.get(e.actor, e.actor), describe(e.data or {}, lang))
            for e in entries]
    params = [(k, v) for k, v in values.items() if v]

    def page_url(n: int) -> str:
        return "/backoffice/audit?" + urlencode([*params, ("page", str(n))])

    return render(request, "backoffice/audit.html", {
        "title": gettext(request, N_("Audit log")), "rows": rows, "values": values,
        "errors": errors, "actions": actions, "subject_types": subject_types,
        "people": people, "page": page,
        "prev_url": page_url(page - 1) if page > 1 else "",
        "next_url": page_url(page + 1) if more else "", "nav_key": "audit"},
        status=422 if errors else 200)


# --- the links in the e-mails, and "forgot your password?" ------------------------------

async def _set_password_page(request: Request, token: str, *,
                             errors: dict[str, str] | None = None,
                             status: int = 200) -> Response:
    async with db_of(request).reader() as s:
        state = await admin.link_state(s, token)
    problem = "" if state.state == "ok" else error_message(
        request, DomainError(state.state, code=f"link_{state.state}"), MESSAGES)
    response = render(request, "staff/set_password.html", {
        "title": gettext(request, N_("Choose your password")), "token": token,
        "link": state, "problem": problem, "errors": errors or {},
        "min_length": admin.MIN_PASSWORD},
        status=status if state.state == "ok" else 410 if state.state != "invalid" else 404)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/staff/set-password", dependencies=[public(
    "choosing a password through the one-time link mailed to the person")])
async def set_password_form(request: Request,
                            token: Annotated[str, Query(max_length=200)] = "") -> Response:
    return await _set_password_page(request, token)


@router.post("/staff/set-password", dependencies=[public(
    "choosing a password through the one-time link mailed to the person")])
async def set_password(request: Request) -> Response:
    form = await checked_form(request)
    token = str(form.get("token") or "")[:200]
    password = str(form.get("password") or "")[:2000]
    confirm = str(form.get("confirm") or "")[:2000]
    errors: dict[str, str] = {}
    if len(password) < admin.MIN_PASSWORD:
        errors["password"] = gettext(request, MESSAGES["weak_password"],
                                     min=str(admin.MIN_PASSWORD))
    if password != confirm:
        errors["confirm"] = gettext(request, MESSAGES["password_mismatch"])
    if errors:
        return await _set_password_page(request, token, errors=errors, status=422)
    try:
        async with db_of(request).uow() as uow:
            person = await admin.set_password_with_link(uow, token, password, confirm)
            session = await sign_in(uow, person, request.headers.get("user-agent", ""))
            await uow.commit()
    except DomainError as exc:
        if exc.field == "token":
            return await _set_password_page(request, token)
        return await _set_password_page(request, token, errors={
            exc.field or "password": _msg(request, exc)}, status=422)
    await sign_out_shopper(request)  # the cookie is replaced whole
    login_session(request, session)
    return RedirectResponse("/staff/", status_code=303)


@router.get("/staff/forgot-password", dependencies=[public(
    "asking for a password link: mailed only to the address on file; CSRF-checked")])
async def forgot_form(request: Request) -> Response:
    return render(request, "staff/forgot_password.html", {
        "title": gettext(request, N_("Forgot your password?")), "email": "",
        "errors": {}, "sent": False})


@router.post("/staff/forgot-password", dependencies=[public(
    "asking for a password link: mailed only to the address on file; CSRF-checked")])
async def forgot(request: Request) -> Response:
    form = await checked_form(request)
    email = str(form.get("email") or "").strip()[:320]
    if "@" not in email:
        return render(request, "staff/forgot_password.html", {
            "title": gettext(request, N_("Forgot your password?")), "email": email,
            "errors": {"email": gettext(request, MESSAGES["invalid_email"])},
            "sent": False}, status=422)
    refused = await throttling.attempt(request, "staff_reset", email)
    if refused is not None:
        return render(request, "staff/forgot_password.html", {
            "title": gettext(request, N_("Forgot your password?")), "email": email,
            "errors": {"email": throttling.message(request, refused)}, "sent": False},
            status=429, headers=throttling.retry_headers(refused))
    async with db_of(request).uow() as uow:
        await admin.request_password_reset(uow, email, lang=page_lang(request),
                                           settings=settings_of(request))
        await uow.commit()
    return render(request, "staff/forgot_password.html", {
        "title": gettext(request, N_("Forgot your password?")), "email": email,
        "errors": {}, "sent": True})
