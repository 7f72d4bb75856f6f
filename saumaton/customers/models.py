"""One customer register; a customer is found by any of their identities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.core.clock import utcnow
from saumaton.db.base import Base, BigID, UTCDateTime


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Merged into another customer (this record is kept, empty, for the undo window
    # and so that old references can be followed).
    merged_into_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id"), nullable=True, index=True)
    # Personal data anonymised on request (GDPR art. 17); orders stay for accounting.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# The till's name search (lower(name) LIKE 'ann%', ten in name order from one index
# range; customers.card); PostgreSQL only (migration 0008): SQLite's lower() folds
# ASCII only and its LIKE ignores case anyway.
# Written as PostgreSQL shows them (tests/test_migrations.py compares the two).
for _lead, _then in (("first_name", "last_name"), ("last_name", "first_name")):
    Index(f"ix_customers_name_by_{_lead.removesuffix('_name')}",
          text(f'lower(({_lead})::text) COLLATE "C"'),
          text(f'lower(({_then})::text) COLLATE "C"'), Customer.id,
          ).ddl_if(dialect="postgresql")


class CustomerMerge(Base):
    """One reviewed merge of `merged_id` into `kept_id`: which rows moved, so that it
    can be undone within the undo window and explained afterwards."""

    __tablename__ = "customer_merges"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    kept_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"), index=True)
    merged_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id"),
                                           index=True)
    # {"table": [row ids moved], ...} and the merged customer's own fields before.
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    merged_by: Mapped[str] = mapped_column(String(200), default="")
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    undone_by: Mapped[str] = mapped_column(String(200), default="")


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    # Indexed on its own too: the back office lists the customers with a tag.
    tag: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerIdentity(Base):
    """kind: email (lower-cased), phone (E.164), card (loyalty card number)."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))


class CustomerAccount(Base):
    """A webshop login. The e-mail is also one of the customer's identities."""

    __tablename__ = "customer_accounts"
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)  # normalised
    password_hash: Mapped[str] = mapped_column(String(200))
    # Until verified, purchases made elsewhere under this e-mail are not shown.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CustomerAddress(Base):
    __tablename__ = "customer_addresses"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(16))
    city: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2), default="FI")
    phone: Mapped[str] = mapped_column(String(32), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerConsent(Base):
    """Append-only: the latest row per (customer, kind) is in force."""

    __tablename__ = "customer_consents"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # marketing_email | marketing_sms
    granted: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(32), default="")  # where it was given
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountToken(Base):
    """A one-time link sent by e-mail (password reset, e-mail verification); only its
    SHA-256 is stored."""

    __tablename__ = "account_tokens"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))  # reset | verify
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerPreference(Base):
    """What suits the customer, e.g. shade = '2N', skin_type = 'sensitive'."""

    __tablename__ = "customer_preferences"
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PreferenceField(Base):
    """A preference the shop records about its customers (shade, skin type, …). Cards
    show the active ones by `position`; a choice field's value is one of `options`.
    Removing a field deactivates it: the values customers have stay."""

    __tablename__ = "preference_fields"
    key: Mapped[str] = mapped_column(String(50), primary_key=True)  # [a-z][a-z0-9_]*
    label: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text | choice
    options: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerNote(Base):
    """A note staff wrote about the customer, in any channel."""

    __tablename__ = "customer_notes"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(32), default="")  # pos | service | backoffice
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerSession(Base):
    """A shopper signed in on one browser. The session cookie holds only a random token
    whose SHA-256 is kept here, so signing out ends the session everywhere, a copy of
    the cookie included; a password change or reset and an erasure end them too."""

    __tablename__ = "customer_sessions"
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Segment(Base):
    """A saved group of customers by rules (customers.segments): a campaign's price can
    be for its members only, and e-mails and exports read its members."""

    __tablename__ = "customer_segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # customers.segments.SegmentRules as JSON.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The consent in force is the newest row per customer and kind: segments ask it of
# every customer, so the newest one is a single index probe.
Index("ix_customer_consents_newest", CustomerConsent.customer_id, CustomerConsent.kind,
      CustomerConsent.id)
