"""/api/v1 customers, the back office's part (web/backoffice/customers.py and the contact
forms of web/customer_contact.py) as JSON: the register a page at a time (search, tag),
a customer's card, correcting the name, e-mails, phones and card, consents, preferences,
tags, notes, duplicates (candidates, what a merge would move, the merge and its undo) and
the preference fields the cards ask.

`customers.read` to read, `customers.write` to change, `customers.merge` at every
location to merge, `customers.configure` at every location to change the fields.
Thin: the rules are in saumaton.customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt, field_validator, model_validator

from saumaton.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, page_of
from saumaton.core.actor import Actor
from saumaton.core.errors import ValidationFailed
from saumaton.core.types import MAX_ID, Input, NoNul
from saumaton.customers import contact, fields
from saumaton.customers.card import (
    CustomerMatch,
    customer_card,
    find_customers,
    list_customers,
    notes_of,
)
from saumaton.customers.duplicates import (
    duplicate_candidates,
    get_merge,
    merge_customers,
    merge_preview,
    undo_merge,
)
from saumaton.customers.notes import add_note, set_preference
from saumaton.customers.tags import add_tag, all_tags, remove_tag, tags_of_many
from saumaton.web.auth import db_of
from saumaton.web.pages import settings_of
from saumaton.web.route_access import api_requires

router = APIRouter(prefix="/api/v1", tags=["customers"])
Reader = Annotated[Actor, api_requires("customers.read")]
Writer = Annotated[Actor, api_requires("customers.write")]
Merger = Annotated[Actor, api_requires("customers.merge", everywhere=True)]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "customer_not_found"}}


class CustomerRowOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    card: str | None
    matched_by: str = Field(description="phone | email | card | name | tag | list")
    tags: list[str]


async def _rows(request: Request, found: list[CustomerMatch]) -> list[CustomerRowOut]:
    async with db_of(request).reader() as s:
        tags = await tags_of_many(s, [m.id for m in found])
    return [CustomerRowOut(id=m.id, first_name=m.first_name, last_name=m.last_name,
                           email=m.email, phone=m.phone, card=m.card,
                           matched_by=m.matched_by, tags=tags.get(m.id, []))
            for m in found]


@router.get("/customers", response_model=Page[CustomerRowOut],
            summary="The customer register a page at a time, or a search (customers.read)",
            description="Without `q`: every active customer by id (with `tag`: those with "
                        "the tag). With `q`: a phone, e-mail, card number or the start of a "
                        "name, as the till's search (at most a few matches, exact ones "
                        "first).")
async def list_register(
    request: Request, actor: Reader,
    q: Annotated[str | None, Query(min_length=1, max_length=320), NoNul] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=50), NoNul] = None,
    cursor: CursorQuery = None, limit: LimitQuery = 50,
) -> Page[CustomerRowOut]:
    if q is not None and tag is not None:
        raise ValidationFailed("search by `q` or list by `tag`, not both",
                               code="q_and_tag", field="tag")
    if q is not None:
        key = decode_cursor(cursor, "n")
        start = int(key["n"]) if key is not None and isinstance(key["n"], int) else 0
        async with db_of(request).reader() as s:
            found = await find_customers(s, actor, q)
        numbered = list(enumerate(await _rows(request, found[start:start + limit + 1]),
                                  start + 1))
        page = page_of(numbered, limit, lambda r: {"n": r[0]})
        return Page[CustomerRowOut](items=[r for _, r in page.items],
                                    next_cursor=page.next_cursor)
    key = decode_cursor(cursor, "id")
    after = int(key["id"]) if key is not None and isinstance(key["id"], int) else None
    async with db_of(request).reader() as s:
        found = await list_customers(s, actor, after_id=after, limit=limit + 1, tag=tag)
    return page_of(await _rows(request, found), limit, lambda r: {"id": r.id})


class TagCountOut(BaseModel):
    tag: str
    customers: int


@router.get("/customer-tags", response_model=Page[TagCountOut],
            summary="Every tag in use and how many customers have it (customers.read)")
async def list_tags(request: Request, actor: Reader, cursor: CursorQuery = None,
                    limit: LimitQuery = 100) -> Page[TagCountOut]:
    key = decode_cursor(cursor, "tag")
    async with db_of(request).reader() as s:
        tags = await all_tags(s, actor)
    rows = [TagCountOut(tag=t.tag, customers=t.customers) for t in tags
            if key is None or t.tag > str(key["tag"])]
    return page_of(rows[:limit + 1], limit, lambda t: {"tag": t.tag})


# --- one customer ----------------------------------------------------------------------

class IdentityOut(BaseModel):
    id: int
    kind: str = Field(description="email | phone | card")
    value: str
    login: bool = Field(description="the webshop account's e-mail (only the shopper "
                                    "changes it)")


class ConsentOut(BaseModel):
    kind: str
    granted: bool
    channel: str
    at: datetime | None


class NoteOut(BaseModel):
    id: int
    body: str
    author: str
    channel: str
    created_at: datetime


class CustomerCardOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    member_since: datetime
    has_account: bool
    purchase_count: int
    lifetime_value_cents: int
    last_purchase_at: datetime | None
    identities: list[IdentityOut]
    consents: list[ConsentOut]
    preferences: dict[str, str]
    tags: list[str]
    notes: list[NoteOut] = Field(description="the newest few; all: …/notes")
    points: int | None = Field(description="loyalty points balance; null: no card")
    tier: str | None
    store_credit_cents: int | None


async def _card(request: Request, actor: Actor, customer_id: int) -> CustomerCardOut:
    async with db_of(request).reader() as s:
        c = await customer_card(s, actor, customer_id, settings=settings_of(request))
    return CustomerCardOut(
        id=c.id, first_name=c.first_name, last_name=c.last_name,
        member_since=c.member_since, has_account=c.has_account,
        purchase_count=c.purchase_count, lifetime_value_cents=c.lifetime_value_cents,
        last_purchase_at=c.last_purchase_at,
        identities=[IdentityOut(id=i.id, kind=i.kind, value=i.value, login=i.login)
                    for i in c.identities],
        consents=[ConsentOut(kind=x.kind, granted=x.granted, channel=x.channel, at=x.at)
                  for x in c.consent_details],
        preferences=dict(c.preferences), tags=list(c.tags),
        notes=[NoteOut(id=n.id, body=n.body, author=n.author, channel=n.channel,
                       created_at=n.created_at) for n in c.notes],
        points=c.loyalty.points if c.loyalty is not None else None,
        tier=c.loyalty.status.tier if c.loyalty is not None else None,
        store_credit_cents=c.store_credit.balance_cents if c.store_credit else None)


@router.get("/customers/{customer_id}/card", response_model=CustomerCardOut,
            responses=NOT_FOUND,
            summary="Everything the back office shows about a customer (customers.read)")
async def get_card(request: Request, customer_id: CustomerId,
                   actor: Reader) -> CustomerCardOut:
    return await _card(request, actor, customer_id)


def _name(value: str | None) -> str | None:
    return None if value is None else " ".join(value.split())


class CustomerPatch(Input):
    """Only what is sent changes. A name may not end up blank on both sides."""

    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    preferences: dict[Annotated[str, Field(min_length=1, max_length=64)],
                      Annotated[str, Field(max_length=200)]] | None = Field(
        None, max_length=50, description="field key → value; \"\" removes the value")

    _names = field_validator("first_name", "last_name")(_name)

    @model_validator(mode="after")
    def _not_null(self) -> CustomerPatch:
        for key in self.model_fields_set:
            if getattr(self, key) is None:
                raise ValueError(f"{key}: leave it out instead of sending null")
        return self


@router.patch("/customers/{customer_id}", response_model=CustomerCardOut,
              responses={**NOT_FOUND, 422: {"description": "name_required, "
                                                           "unknown_preference, …"}},
              summary="Correct a customer's name, set preferences (customers.write)")
async def patch_customer(request: Request, customer_id: CustomerId, body: CustomerPatch,
                         actor: Writer) -> CustomerCardOut:
    async with db_of(request).uow() as uow:
        if "first_name" in body.model_fields_set or "last_name" in body.model_fields_set:
            c = await customer_card(uow.session, actor, customer_id)
            await contact.update_name(
                uow, actor, customer_id,
                body.first_name if body.first_name is not None else c.first_name,
                body.last_name if body.last_name is not None else c.last_name)
        for key, value in (body.preferences or {}).items():
            await set_preference(uow, actor, customer_id, key, value)
        await uow.commit()
    return await _card(request, actor, customer_id)


class IdentityIn(Input):
    kind: Literal["email", "phone"]
    value: str = Field(min_length=1, max_length=320)


@router.post("/customers/{customer_id}/identities", response_model=CustomerCardOut,
             status_code=201,
             responses={**NOT_FOUND, 409: {"description": "identity_taken (the other "
                                                          "customer's id in `customer_id`)"}},
             summary="Add an e-mail or phone number to a customer (customers.write)")
async def add_identity(request: Request, customer_id: CustomerId, body: IdentityIn,
                       actor: Writer) -> CustomerCardOut:
    async with db_of(request).uow() as uow:
        await contact.add_identity(uow, actor, customer_id, body.kind, body.value)
        await uow.commit()
    return await _card(request, actor, customer_id)


@router.delete("/customers/{customer_id}/identities/{identity_id}",
               response_model=CustomerCardOut,
               responses={404: {"description": "customer_not_found, identity_not_found"},
                          409: {"description": "last_identity, login_identity"}},
               summary="Remove one of a customer's e-mails or phones (customers.write)")
async def remove_identity(request: Request, customer_id: CustomerId,
                          identity_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                          actor: Writer) -> CustomerCardOut:
    async with db_of(request).uow() as uow:
        await contact.remove_identity(uow, actor, customer_id, identity_id)
        await uow.commit()
    return await _card(request, actor, customer_id)


@router.post("/customers/{customer_id}/loyalty-card", response_model=CustomerCardOut,
             status_code=201, responses={**NOT_FOUND, 409: {"description": "card_exists"}},
             summary="Give a customer a loyalty card number (customers.write)")
async def issue_card(request: Request, customer_id: CustomerId,
                     actor: Writer) -> CustomerCardOut:
    async with db_of(request).uow() as uow:
        await contact.issue_card(uow, actor, customer_id)
        await uow.commit()
    return await _card(request, actor, customer_id)


class ConsentsIn(Input):
    marketing_email: StrictBool
    marketing_sms: StrictBool


@router.put("/customers/{customer_id}/consents", response_model=CustomerCardOut,
            responses=NOT_FOUND,
            summary="Record what the customer says about marketing (customers.write)",
            description="Each consent whose value changes is appended to its history "
                        "with who recorded it (channel \"backoffice\").")
async def set_consents(request: Request, customer_id: CustomerId, body: ConsentsIn,
                       actor: Writer) -> CustomerCardOut:
    async with db_of(request).uow() as uow:
        await contact.set_consents(uow, actor, customer_id, body.model_dump(),
                                   "backoffice")
        await uow.commit()
    return await _card(request, actor, customer_id)


class TagIn(Input):
    tag: str = Field(min_length=1, max_length=50,
                     description="1–50 letters, digits, spaces, '-' or '_'; stored in lower "
                                 "case")


@router.post("/customers/{customer_id}/tags", response_model=list[str], status_code=201,
             responses={**NOT_FOUND, 422: {"description": "invalid_tag"}},
             summary="Put a tag on a customer; the customer's tags (customers.write)")
async def put_tag(request: Request, customer_id: CustomerId, body: TagIn,
                  actor: Writer) -> list[str]:
    async with db_of(request).uow() as uow:
        await add_tag(uow, actor, customer_id, body.tag)
        await uow.commit()
    async with db_of(request).reader() as s:
        return (await tags_of_many(s, [customer_id]))[customer_id]


@router.delete("/customers/{customer_id}/tags/{tag}", response_model=list[str],
               responses={**NOT_FOUND, 422: {"description": "invalid_tag"}},
               summary="Take a tag off a customer; the customer's tags (customers.write)")
async def delete_tag(request: Request, customer_id: CustomerId,
                     tag: Annotated[str, Path(min_length=1, max_length=50), NoNul],
                     actor: Writer) -> list[str]:
    async with db_of(request).uow() as uow:
        await remove_tag(uow, actor, customer_id, tag)
        await uow.commit()
    async with db_of(request).reader() as s:
        return (await tags_of_many(s, [customer_id]))[customer_id]


class NoteIn(Input):
    body: str = Field(min_length=1, max_length=2000)


@router.post("/customers/{customer_id}/notes", response_model=NoteOut, status_code=201,
             responses={**NOT_FOUND, 422: {"description": "note_required, note_too_long"}},
             summary="Write a note about a customer, signed by the caller (customers.write)")
async def post_note(request: Request, customer_id: CustomerId, body: NoteIn,
                    actor: Writer) -> NoteOut:
    async with db_of(request).uow() as uow:
        n = await add_note(uow, actor, customer_id, body.body, "backoffice")
        await uow.commit()
    return NoteOut(id=n.id, body=n.body, author=n.author, channel=n.channel,
                   created_at=n.created_at)


@router.get("/customers/{customer_id}/notes", response_model=Page[NoteOut],
            responses=NOT_FOUND, summary="A customer's notes, newest first (customers.read)")
async def list_notes(request: Request, customer_id: CustomerId, actor: Reader,
                     cursor: CursorQuery = None, limit: LimitQuery = 50) -> Page[NoteOut]:
    key = decode_cursor(cursor, "n")
    start = int(key["n"]) if key is not None and isinstance(key["n"], int) else 0
    async with db_of(request).reader() as s:
        await customer_card(s, actor, customer_id)  # 404 for an unknown customer
        notes = await notes_of(s, customer_id, limit=start + limit + 1)
    rows = [(start + i + 1, NoteOut(id=n.id, body=n.body, author=n.author,
                                    channel=n.channel, created_at=n.created_at))
            for i, n in enumerate(notes[start:])]
    page = page_of(rows, limit, lambda r: {"n": r[0]})
    return Page[NoteOut](items=[n for _, n in page.items], next_cursor=page.next_cursor)


# --- duplicates and merging ------------------------------------------------------------

class SummaryOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    card: str | None
    postcode: str | None
    order_count: int
    last_purchase_at: datetime | None
    has_account: bool
    created_at: datetime


class ReasonOut(BaseModel):
    kind: str = Field(description="email | phone | name_postcode")
    value: str


class CandidateOut(BaseModel):
    a: SummaryOut
    b: SummaryOut
    reasons: list[ReasonOut]
    score: int
    suggested_kept_id: int


@router.get("/customer-duplicates", response_model=Page[CandidateOut],
            summary="Pairs of customers that are probably one person, likeliest first "
                    "(customers.merge everywhere)",
            description="The list is at most 200 pairs, worked out afresh on each call.")
async def list_duplicates(request: Request, actor: Merger, cursor: CursorQuery = None,
                          limit: LimitQuery = 50) -> Page[CandidateOut]:
    key = decode_cursor(cursor, "n")
    start = int(key["n"]) if key is not None and isinstance(key["n"], int) else 0
    async with db_of(request).reader() as s:
        found = await duplicate_candidates(s, actor, limit=200)
    rows = [(start + i + 1, CandidateOut(
        a=SummaryOut.model_validate(c.a, from_attributes=True),
        b=SummaryOut.model_validate(c.b, from_attributes=True),
        reasons=[ReasonOut(kind=r.kind, value=r.value) for r in c.reasons], score=c.score,
        suggested_kept_id=c.suggested_kept_id))
        for i, c in enumerate(found[start:start + limit + 1])]
    page = page_of(rows, limit, lambda r: {"n": r[0]})
    return Page[CandidateOut](items=[c for _, c in page.items], next_cursor=page.next_cursor)


class PreviewOut(BaseModel):
    kept: SummaryOut
    merged: SummaryOut
    counts: dict[str, int] = Field(description="table → the merged customer's rows that "
                                               "move")
    kept_wins: dict[str, int]
    blocked: str | None = Field(description="why the merge cannot be done (a code)")


IdQuery = Annotated[int, Query(ge=1, le=MAX_ID)]


@router.get("/customer-merges/preview", response_model=PreviewOut,
            responses={404: {"description": "customer_not_found"}},
            summary="What merging `merged_id` into `kept_id` would move "
                    "(customers.merge everywhere)")
async def preview_merge(request: Request, actor: Merger, kept_id: IdQuery,
                        merged_id: IdQuery) -> PreviewOut:
    async with db_of(request).reader() as s:
        p = await merge_preview(s, actor, kept_id, merged_id)
    return PreviewOut(kept=SummaryOut.model_validate(p.kept, from_attributes=True),
                      merged=SummaryOut.model_validate(p.merged, from_attributes=True),
                      counts=p.counts, kept_wins=p.kept_wins, blocked=p.blocked)


class MergeIn(Input):
    kept_id: StrictInt = Field(ge=1, le=MAX_ID)
    merged_id: StrictInt = Field(ge=1, le=MAX_ID)


class MergeOut(BaseModel):
    id: int
    kept_id: int
    merged_id: int
    merged_name: str
    counts: dict[str, int]
    merged_by: str
    merged_at: datetime
    undo_until: datetime
    undone_at: datetime | None
    can_undo: bool


async def _merge(request: Request, actor: Actor, merge_id: int) -> MergeOut:
    async with db_of(request).reader() as s:
        info = await get_merge(s, actor, merge_id)
    return MergeOut.model_validate(info, from_attributes=True)


@router.post("/customer-merges", response_model=MergeOut, status_code=201,
             responses={404: {"description": "customer_not_found"},
                        409: {"description": "the merge cannot be done (e.g. both have a "
                                             "webshop account)"}},
             summary="Merge one customer into another (customers.merge everywhere); "
                     "undoable for a while")
async def merge(request: Request, response: Response, body: MergeIn,
                actor: Merger) -> MergeOut:
    async with db_of(request).uow() as uow:
        result = await merge_customers(uow, actor, body.kept_id, body.merged_id)
        await uow.commit()
    response.headers["Location"] = f"/api/v1/customer-merges/{result.merge_id}"
    return await _merge(request, actor, result.merge_id)


MergeId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/customer-merges/{merge_id}", response_model=MergeOut,
            responses={404: {"description": "merge_not_found"}},
            summary="A merge and whether it can still be undone (customers.merge "
                    "everywhere)")
async def get_merge_info(request: Request, merge_id: MergeId, actor: Merger) -> MergeOut:
    return await _merge(request, actor, merge_id)


@router.post("/customer-merges/{merge_id}/undo", response_model=MergeOut,
             responses={404: {"description": "merge_not_found"},
                        409: {"description": "the undo window has closed, or it was "
                                             "undone"}},
             summary="Undo a merge while its window is open (customers.merge everywhere)")
async def undo(request: Request, merge_id: MergeId, actor: Merger) -> MergeOut:
    async with db_of(request).uow() as uow:
        await undo_merge(uow, actor, merge_id)
        await uow.commit()
    return await _merge(request, actor, merge_id)


# --- the preference fields the cards ask ---------------------------------------------

class FieldOut(BaseModel):
    key: str
    label: str
    kind: Literal["text", "choice"]
    options: list[str]
    position: int
    active: bool


def _field_out(f: fields.FieldOut) -> FieldOut:
    return FieldOut(key=f.key, label=f.label, kind=f.kind,
                    options=list(f.options), position=f.position, active=f.active)


Configurer = Annotated[Actor, api_requires("customers.configure", everywhere=True)]
Option = Annotated[str, Field(min_length=1, max_length=fields.MAX_OPTION)]


class FieldIn(Input):
    key: str = Field(min_length=1, max_length=50,
                     description="lower-case letters, digits and '_', e.g. \"shade\"")
    label: str = Field(min_length=1, max_length=100)
    kind: Literal["text", "choice"] = "text"
    options: list[Option] = Field(default_factory=list, max_length=fields.MAX_OPTIONS)
    position: StrictInt | None = Field(None, ge=0, le=fields.MAX_POSITION,
                                       description="default: last")

    _label = field_validator("label")(_name)


class FieldPatch(Input):
    label: str | None = Field(None, min_length=1, max_length=100)
    options: list[Option] | None = Field(None, max_length=fields.MAX_OPTIONS)
    position: StrictInt | None = Field(None, ge=0, le=fields.MAX_POSITION)
    active: StrictBool | None = Field(None, description="false: the cards no longer ask it "
                                                        "(values are kept)")

    _label = field_validator("label")(_name)


@router.get("/customer-fields", response_model=Page[FieldOut],
            summary="The preference fields the customer cards ask, in order "
                    "(customers.read)")
async def list_fields(request: Request, actor: Reader,
                      include_inactive: Annotated[bool, Query()] = False,
                      cursor: CursorQuery = None, limit: LimitQuery = 100) -> Page[FieldOut]:
    key = decode_cursor(cursor, "n")
    start = int(key["n"]) if key is not None and isinstance(key["n"], int) else 0
    async with db_of(request).reader() as s:
        found = await fields.list_fields(s, include_inactive=include_inactive)
    rows = [(start + i + 1, _field_out(f))
            for i, f in enumerate(found[start:start + limit + 1])]
    page = page_of(rows, limit, lambda r: {"n": r[0]})
    return Page[FieldOut](items=[f for _, f in page.items], next_cursor=page.next_cursor)


@router.post("/customer-fields", response_model=FieldOut, status_code=201,
             responses={409: {"description": "duplicate_field"}},
             summary="Add a preference field (customers.configure everywhere)")
async def create_field(request: Request, body: FieldIn, actor: Configurer) -> FieldOut:
    async with db_of(request).uow() as uow:
        out = await fields.create_field(uow, actor, body.key, body.label, body.kind,
                                        body.options, body.position)
        await uow.commit()
    return _field_out(out)


@router.patch("/customer-fields/{key}", response_model=FieldOut,
              responses={404: {"description": "field_not_found"}},
              summary="Change a preference field's label, options, order or whether the "
                      "cards ask it (customers.configure everywhere)")
async def update_field(request: Request, body: FieldPatch, actor: Configurer,
                       key: Annotated[str, Path(min_length=1, max_length=50), NoNul]
                       ) -> FieldOut:
    async with db_of(request).uow() as uow:
        out = await fields.update_field(uow, actor, key, label=body.label,
                                        options=body.options, position=body.position,
                                        active=body.active)
        await uow.commit()
    return _field_out(out)
