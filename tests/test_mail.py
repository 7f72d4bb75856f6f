"""Outgoing mail: queued in the caller's transaction, sent as .eml files or over SMTP
(a real local SMTP server), retried with backoff, rendered in Finnish and English.

The sender tests use a database of their own: the app fixtures' background senders
share the common test database and would otherwise pick up these mails.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from saumaton.checkout.pickup import pickup_code
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.db.uow import Database
from saumaton.mail import messages
from saumaton.mail.inline import inline_images, qr_png, qr_src
from saumaton.mail.models import OutgoingMail
from saumaton.mail.queue import (
    claimed_until,
    hand_after_commit,
    queue_mail,
    queued_mail_cte_pg,
    wake_event,
)
from saumaton.mail.sender import MAX_ATTEMPTS, Claimed, run_mail_sender, send_due
from saumaton.mail.wire import message_bytes
from saumaton.orders.schemas import DeliveryOut, OrderLineOut, OrderOut, VatLine
from tests.support import drop_pg_database, eventually, fresh_database

# --- a real SMTP server, just enough of RFC 5321 ------------------------------------------


class SmtpSink:
    """Listens on 127.0.0.1 (a free port); keeps what it receives. Refuses the
    recipients in `refuse` with 550; offers AUTH PLAIN and no STARTTLS."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse = refuse
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, str]] = []
        self.received = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SmtpSink:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        async def reply(*lines: str) -> None:
            writer.write("".join(line + "\r\n" for line in lines).encode())
            await writer.drain()

        await reply("220 sink ESMTP")
        sender, rcpts = "", []
        while raw := await reader.readline():
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                await reply("250-sink", "250-AUTH PLAIN", "250-8BITMIME", "250 SMTPUTF8")
            elif verb == "HELO":
                await reply("250 sink")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(line.split()[2]).decode().split("\0")
                self.logins.append((user, password))
                await reply("235 2.7.0 accepted")
            elif verb == "MAIL":
                sender, rcpts = line.split(":", 1)[1].split()[0].strip("<>"), []
                await reply("250 ok")
            elif verb == "RCPT":
                addr = line.split(":", 1)[1].split()[0].strip("<>")
                if addr in self.refuse:
                    await reply("550 5.1.1 no such mailbox")
                else:
                    rcpts.append(addr)
                    await reply("250 ok")
            elif verb == "DATA":
                await reply("354 end with .")
                body = bytearray()
                while (chunk := await reader.readline()) not in (b".\r\n", b""):
                    body += chunk[1:] if chunk.startswith(b"..") else chunk
                self.messages.append((sender, rcpts, bytes(body)))
                self.received.set()
                await reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                await reply("250 ok")
            elif verb == "QUIT":
                await reply("221 bye")
                break
            else:
                await reply("502 not implemented")
        writer.close()


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def mail_db(backend: str, session_tmp: Path) -> AsyncIterator[Database]:
    url = await fresh_database(backend, session_tmp)
    database = Database(url)
    yield database
    await database.dispose()
    if backend == "postgresql":
        await drop_pg_database(url)


@pytest.fixture
async def mdb(mail_db: Database) -> Database:
    """The mail database, emptied: each test sees only its own mail."""
    async with mail_db.uow() as uow:
        await uow.session.execute(delete(OutgoingMail))
        await uow.commit()
    return mail_db


def file_settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", secret_key="x" * 32)


def smtp_settings(tmp_path: Path, port: int, **extra: object) -> Settings:
    values: dict[str, object] = {"smtp_host": "127.0.0.1", "smtp_port": port,
                                 "smtp_starttls": False, **extra}
    return Settings(var_dir=tmp_path / "var", secret_key="x" * 32, **values)  # type: ignore[arg-type]


async def queue(db: Database, n: int = 1, *, to: str = "asiakas@example.fi",
                html: str = "<p>Hei</p>", kind: str = "test") -> list[int]:
    async with db.uow() as uow:
        ids = [await queue_mail(uow, kind=kind, to=to, subject=f"Testi {i} – ä",
                                text=f"Hei {i}\n", html=html, reference=f"r{i}")
               for i in range(n)]
        await uow.commit()
    return ids


async def rows(db: Database) -> dict[int, OutgoingMail]:
    async with db.reader() as s:
        return {r.id: r for r in (await s.scalars(select(OutgoingMail))).all()}


async def make_due(db: Database) -> None:
    """Move every retry to now: what the clock would do after the backoff."""
    async with db.uow() as uow:
        await uow.session.execute(update(OutgoingMail).values(
            next_attempt_at=utcnow() - timedelta(seconds=1)))
        await uow.commit()


# --- queueing -----------------------------------------------------------------------------

async def test_a_mail_exists_only_if_its_transaction_commits(mdb: Database) -> None:
    wake = wake_event(mdb)
    wake.clear()
    async with mdb.uow() as uow:
        await queue_mail(uow, kind="test", to="a@example.fi", subject="s", text="t")
        await uow.rollback()
    async with mdb.uow() as uow:
        await queue_mail(uow, kind="test", to="b@example.fi", subject="s", text="t")
        # leaving without commit rolls back
    assert await rows(mdb) == {}
    assert not wake.is_set()  # nothing committed, nobody woken

    [mail_id] = await queue(mdb, to="c@example.fi")
    assert wake.is_set()  # the sender is woken after the commit
    found = await rows(mdb)
    assert list(found) == [mail_id]
    assert found[mail_id].status == "queued" and found[mail_id].attempts == 0


# --- .eml files ---------------------------------------------------------------------------

async def test_without_smtp_mail_is_written_as_eml_files(mdb: Database, tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    ids = await queue(mdb, 2)
    assert await send_due(mdb, settings) == 2
    assert await send_due(mdb, settings) == 0  # sent once only

    files = sorted(settings.mail_dir().iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary files left
    for f, mail_id in zip(files, ids, strict=True):
        assert re.fullmatch(rf"\d{{8}}T\d{{12}}Z-{mail_id}-test\.eml", f.name), f.name
        msg = message_from_bytes(f.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        assert msg["From"] == settings.mail_from
        assert msg["To"] == "asiakas@example.fi"
        assert msg["Subject"].startswith("Testi ") and msg["Subject"].endswith(" – ä")
        assert msg["Date"].datetime.tzinfo is not None
        assert re.fullmatch(r"<[^@>]+@saumaton\.invalid>", msg["Message-ID"])
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert text is not None and html is not None
        assert text.get_content().startswith("Hei ")
        assert html.get_content().strip() == "<p>Hei</p>"

    found = await rows(mdb)
    assert all(found[i].status == "sent" and found[i].sent_at is not None
               and found[i].attempts == 1 for i in ids)


async def test_a_text_only_mail_is_a_single_part(mdb: Database, tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    await queue(mdb, html="")
    await send_due(mdb, settings)
    [f] = list(settings.mail_dir().iterdir())
    msg = message_from_bytes(f.read_bytes(), policy=policy.default)
    assert msg.get_content_type() == "text/plain"


async def test_the_pickup_qr_goes_as_an_inline_picture_not_a_data_url(
    mdb: Database, tmp_path: Path
) -> None:
    """Mail programs block data: images; a cid: picture in multipart/related they show.
    The queue stores the HTML only: the picture is made when the mail is sent."""
    settings = file_settings(tmp_path)
    pickup = DeliveryOut(method="pickup", fee_cents=0, vat_rate_bp=2550, vat_cents=0,
                         address=None)
    mail = messages.order_confirmation(order(pickup), status_url="https://k.fi/s/1",
                                       lang="fi", settings=settings,
                                       pickup_store_name="Store Helsinki")
    code = pickup_code(123, settings.resolved_secret_key())
    src = f"cid:qr-{code}@qr.saumaton.invalid"
    assert f'<img src="{src}"' in mail.html and "data:" not in mail.html
    async with mdb.uow() as uow:
        mail_id = await queue_mail(uow, kind="order_confirmation", to="a@example.fi",
                                   subject=mail.subject, text=mail.text, html=mail.html)
        await uow.commit()
    assert await send_due(mdb, settings) == 1

    [f] = list(settings.mail_dir().iterdir())
    assert f.name.endswith(f"-{mail_id}-order_confirmation.eml")
    msg = message_from_bytes(f.read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    plain, related = msg.iter_parts()
    assert (msg.get_content_type(), plain.get_content_type(),
            related.get_content_type()) == ("multipart/alternative", "text/plain",
                                            "multipart/related")
    html_part, image = related.iter_parts()
    assert src in html_part.get_content()
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == f"<{src.removeprefix('cid:')}>"
    assert image.get_content_disposition() == "inline"
    png = image.get_content()
    assert png.startswith(b"\x89PNG") and png == qr_png(code)

    assert inline_images("<p>no pictures</p>") == []
    with pytest.raises(ValueError):
        qr_src("NT 123")  # a space would break the cid: link


# --- SMTP ---------------------------------------------------------------------------------

async def test_smtp_delivery_logs_in_and_sends_each_mail(mdb: Database, tmp_path: Path) -> None:
    async with SmtpSink() as sink:
        settings = smtp_settings(tmp_path, sink.port, smtp_user="shop",
                                 smtp_password="sekret")
        ids = await queue(mdb, 3, to="vastaanottaja@example.fi")
        assert await send_due(mdb, settings) == 3
    assert sink.logins == [("shop", "sekret")]  # once per batch
    assert len(sink.messages) == 3
    for sender, rcpts, data in sink.messages:
        assert sender == "noreply@saumaton.invalid"
        assert rcpts == ["vastaanottaja@example.fi"]
        msg = message_from_bytes(data, policy=policy.default)
        assert msg["To"] == "vastaanottaja@example.fi"
    assert not settings.mail_dir().exists()  # nothing written to disk
    found = await rows(mdb)
    assert {found[i].status for i in ids} == {"sent"}


async def test_a_refused_recipient_fails_at_once_others_are_sent(
    mdb: Database, tmp_path: Path
) -> None:
    async with SmtpSink(refuse=frozenset({"ei-ole@example.fi"})) as sink:
        settings = smtp_settings(tmp_path, sink.port)
        [bad] = await queue(mdb, to="ei-ole@example.fi")
        [good] = await queue(mdb, to="on@example.fi")
        assert await send_due(mdb, settings) == 2
    assert [r for _, r, _ in sink.messages] == [["on@example.fi"]]
    found = await rows(mdb)
    assert found[good].status == "sent"
    assert found[bad].status == "failed" and found[bad].attempts == 1
    assert "550" in found[bad].last_error


async def test_an_unreachable_server_is_retried_with_backoff_then_given_up(
    mdb: Database, tmp_path: Path
) -> None:
    async with SmtpSink() as sink:
        port = sink.port
    settings = smtp_settings(tmp_path, port)  # nobody listens there any more
    [mail_id] = await queue(mdb)
    before = utcnow()
    assert await send_due(mdb, settings) == 1
    row = (await rows(mdb))[mail_id]
    assert row.status == "queued" and row.attempts == 1 and row.last_error
    assert timedelta(seconds=25) < row.next_attempt_at - before < timedelta(seconds=60)
    assert await send_due(mdb, settings) == 0  # not due yet

    delays = []
    for attempt in range(2, MAX_ATTEMPTS + 1):
        await make_due(mdb)
        started = utcnow()
        assert await send_due(mdb, settings) == 1
        row = (await rows(mdb))[mail_id]
        assert row.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            delays.append(row.next_attempt_at - started)
    assert all(later > earlier for earlier, later in itertools.pairwise(delays))
    assert row.status == "failed" and row.sent_at is None


async def test_starttls_required_but_not_offered_is_an_error_not_plain_text(
    mdb: Database, tmp_path: Path
) -> None:
    async with SmtpSink() as sink:
        settings = smtp_settings(tmp_path, sink.port, smtp_starttls=True)
        [mail_id] = await queue(mdb)
        await send_due(mdb, settings)
    assert sink.messages == []
    row = (await rows(mdb))[mail_id]
    assert row.status == "queued" and "STARTTLS" in row.last_error


# --- several senders ------------------------------------------------------------------------

async def test_concurrent_senders_send_each_mail_once(mail_db: Database, mdb: Database,
                                                      tmp_path: Path) -> None:
    ids = await queue(mdb, 30)
    others = [Database(mail_db.url) for _ in range(2)]  # like other app processes
    settings = file_settings(tmp_path)
    try:
        counts = await asyncio.gather(*(send_due(d, settings, limit=7)
                                        for d in [mdb, *others, mdb, *others]))
        while sum(counts) < len(ids):
            counts.append(await send_due(mdb, settings, limit=7))
    finally:
        for d in others:
            await d.dispose()
    names = [f.name for f in settings.mail_dir().iterdir()]
    sent_ids = sorted(int(n.split("-")[1]) for n in names)
    assert sent_ids == sorted(ids)  # every mail, none twice
    assert {r.status for r in (await rows(mdb)).values()} == {"sent"}


async def test_the_background_sender_wakes_on_commit(mdb: Database, tmp_path: Path) -> None:
    async with SmtpSink() as sink:
        settings = smtp_settings(tmp_path, sink.port)
        stop = asyncio.Event()
        # An hour between polls: only the commit hook can make it send in time.
        task = asyncio.create_task(run_mail_sender(mdb, lambda: settings, stop,
                                                     every_seconds=3600))
        try:
            [mail_id] = await queue(mdb, to="heti@example.fi")
            async with asyncio.timeout(10):
                await sink.received.wait()
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await task  # finishes the round in progress, then stops
    assert [r for _, r, _ in sink.messages] == [["heti@example.fi"]]
    assert (await rows(mdb))[mail_id].status == "sent"


async def _queue_claimed(db: Database, to: str) -> tuple[int, datetime, datetime]:
    """Queue a mail as the paid order's statement does (checkout/paid_pg.py): claimed by
    this process's sender when one runs, handed to it after the commit. SQLite has no
    such statement: there the mail is queued the usual way."""
    now = utcnow()
    until = claimed_until(db, now)
    async with db.uow() as uow:
        if db.is_postgres:
            cte = queued_mail_cte_pg(kind="'test'", to="$1", subject="$2", text="$3",
                                     html="$4", reference="$5", now="$6", until="$7")
            mail_id = int((await uow.fetchrow(f"WITH {cte} SELECT id FROM queued",
                                              to, "Tilaus", "Kiitos\n", "<p>Kiitos</p>",
                                              "000001", now, until))[0])
            hand_after_commit(uow, Claimed(mail_id, "test", to, "Tilaus", "Kiitos\n",
                                           "<p>Kiitos</p>", 1), until, now)
        else:
            mail_id = await queue_mail(uow, kind="test", to=to, subject="Tilaus",
                                       text="Kiitos\n", html="<p>Kiitos</p>", reference="000001")
        await uow.commit()
    return mail_id, now, until


async def test_mail_queued_claimed_is_sent_as_handed_over(mdb: Database, tmp_path: Path) -> None:
    # No sender in this process: queued due, for any sender (another process's) to claim.
    mail_id, now, until = await _queue_claimed(mdb, "kenelle@example.fi")
    assert until == now
    assert (await rows(mdb))[mail_id].attempts == 0
    assert await send_due(mdb, file_settings(tmp_path)) == 1
    async with SmtpSink() as sink:
        settings = smtp_settings(tmp_path, sink.port)
        stop = asyncio.Event()
        # An hour between polls: only the hand-over can make it send in time.
        task = asyncio.create_task(run_mail_sender(mdb, lambda: settings, stop,
                                                     every_seconds=3600))
        try:
            async def started() -> bool:
                now = utcnow()
                return claimed_until(mdb, now) > now

            await eventually(started, within=10, what="the sender runs")
            mail_id, now, until = await _queue_claimed(mdb, "heti@example.fi")
            if mdb.is_postgres:  # claimed with the sender's lease: no poll would find it
                assert until > now
            async with asyncio.timeout(10):
                await sink.received.wait()
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await task
    assert [r for _, r, _ in sink.messages] == [["heti@example.fi"]]
    sent = (await rows(mdb))[mail_id]
    assert (sent.status, sent.attempts) == ("sent", 1)
    # Sent once: nothing is left for a sender to claim.
    assert await send_due(mdb, file_settings(tmp_path)) == 0


# --- content ------------------------------------------------------------------------------

def order(delivery: DeliveryOut | None) -> OrderOut:
    lines = [
        OrderLineOut(line_no=1, variant_id=1, location_id=None, sku="A", name="Saippua <Deluxe>",
                     quantity=2, unit_price_cents=1000, discount_cents=200, total_cents=1800,
                     vat_rate_bp=2550, vat_cents=366, campaign_id=5),
        OrderLineOut(line_no=2, variant_id=2, location_id=None, sku="B", name="Kirja",
                     quantity=1, unit_price_cents=2500, discount_cents=0, total_cents=2500,
                     vat_rate_bp=1400, vat_cents=307, campaign_id=None),
    ]
    fee = delivery.fee_cents if delivery else 0
    return OrderOut(
        id=123, number="000123", channel="web", location_id=1, customer_id=None,
        status="paid", currency="EUR", subtotal_cents=4500 + fee, discount_cents=200,
        total_cents=4300 + fee, vat_cents=673, paid_cents=4300 + fee, lines=lines, payments=[],
        vat_breakdown=[VatLine(rate_bp=2550, gross_cents=1800 + fee, net_cents=1434,
                               vat_cents=366), VatLine(rate_bp=1400, gross_cents=2500,
                                                       net_cents=2193, vat_cents=307)],
        created_at=datetime(2026, 3, 14, 12, 5, tzinfo=UTC), created_by="web",
        email="asiakas@example.fi", delivery=delivery)


def test_order_confirmation_for_click_and_collect_in_finnish() -> None:
    settings = Settings(business_name="Saippuakauppa Oy", business_id="1234567-8")
    pickup = DeliveryOut(method="pickup", fee_cents=0, vat_rate_bp=2550, vat_cents=0,
                         address=None)
    mail = messages.order_confirmation(order(pickup), status_url="https://kauppa.fi/s/abc",
                                       lang="fi", settings=settings,
                                       pickup_store_name="Store Helsinki")
    assert mail.subject == "Tilausvahvistus 000123 – Saippuakauppa Oy"
    text = mail.text.replace("\xa0", " ")
    for expected in ("Kiitos tilauksestasi!", "Tilausnumero: 000123", "Saippua <Deluxe>",
                     "2 × 10,00 €", "Kampanja-alennus −2,00 €", "Rivin summa 18,00 €",
                     "Nouto myymälästä, Store Helsinki", "Toimitusmaksu maksuton",
                     "Yhteensä 43,00 €", "ALV 25,5 %: 3,66 €", "ALV 14 %: 3,07 €",
                     "(Store Helsinki)", "Ota tilausnumero 000123 mukaasi",
                     "https://kauppa.fi/s/abc", "Y-tunnus 1234567-8", "Saippuakauppa Oy",
                     "14.3.2026"):
        assert expected in text, expected
    assert "Saippua &lt;Deluxe&gt;" in mail.html and "<Deluxe>" not in mail.html
    assert 'href="https://kauppa.fi/s/abc"' in mail.html
    assert "Toimitusosoite" not in text


def test_order_confirmation_for_home_delivery_in_english() -> None:
    home = DeliveryOut(method="home", fee_cents=590, vat_rate_bp=2550, vat_cents=120,
                       address={"name": "Maija Meikäläinen", "street": "Kuja 1",
                                "postcode": "00100", "city": "Helsinki", "country": "FI"})
    mail = messages.order_confirmation(order(home), status_url="https://kauppa.fi/s/x",
                                       lang="en", settings=Settings(), pickup_store_name=None)
    assert mail.subject == "Order 000123 confirmed – Saumaton Demo Oy"
    text = mail.text.replace("\xa0", " ")
    for expected in ("Thank you for your order!", "Delivery: Home delivery",
                     "Delivery fee €5.90", "Maija Meikäläinen", "00100 Helsinki", "Finland",
                     "Total €48.90", "VAT 25.5 %", "Campaign discount −€2.00"):
        assert expected in text, expected
    assert "collection" not in text


def test_account_mails_carry_their_link_in_both_languages() -> None:
    settings = Settings()
    fi = messages.verify_email(url="https://k.fi/account/verify/T1", lang="fi",
                               settings=settings, first_name="Maija")
    assert fi.subject == "Vahvista sähköpostiosoitteesi – Saumaton Demo Oy"
    assert "Hei Maija," in fi.text and "https://k.fi/account/verify/T1" in fi.text
    assert "48 tunnin" in fi.text and 'href="https://k.fi/account/verify/T1"' in fi.html
    en = messages.password_reset(url="https://k.fi/account/reset/T2", lang="en",
                                 settings=settings)
    assert en.subject == "Reset your password – Saumaton Demo Oy"
    assert en.text.startswith("Hello,") and "within an hour" in en.text
    assert "https://k.fi/account/reset/T2" in en.text
    # An unknown language falls back to the shop's default (Finnish).
    assert messages.password_reset(url="u", lang="sv", settings=settings).subject \
        .startswith("Vaihda salasanasi")


@dataclass(frozen=True)
class WireMail:
    id: int
    to: str
    reply_to: str
    subject: str
    text: str
    html: str
    list_unsubscribe: str = ""


@pytest.mark.parametrize("subject", [
    "Tilausvahvistus 000123 – Saippuakauppa Oy",
    "Ääkköset ja 😀 emoji 𝄞 " * 6,
    "rivi\nvaihto – ja\rpaluu",
    "ascii only but long enough to need folding " * 3,
])
def test_wire_subject_decodes_back_and_keeps_lines_short(subject: str) -> None:
    mail = WireMail(1, "Asiakas <a@example.fi>", "", subject, "t", "")
    data = message_bytes(mail, mail_from="Kauppa <k@example.fi>",
                         message_id="<m1@example.fi>", now=utcnow())
    assert data is not None
    assert all(len(line) <= 78 for line in data.decode("ascii").split("\n"))
    msg = message_from_bytes(data, policy=policy.default)
    assert str(msg["Subject"]) == subject.replace("\r", " ").replace("\n", " ")
