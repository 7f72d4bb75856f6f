"""The demo shop: "Kaunis Iho", a fictional Finnish skincare and make-up retailer.

`load_demo` fills an empty, migrated database with two stores, a warehouse, the
sales channels, a catalogue of about 160 variants with valid EAN-13 barcodes,
opening stock, four campaigns (one a 3-for-2 bundle, one for members), a
scheduled price change, staff accounts, customers and about 100 orders
placed through the ordinary services. Everything is deterministic (seeded RNG)
apart from loyalty card numbers and timestamps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from stdnum import ean as stdnum_ean

from saumaton.catalogue.models import Category, Variant
from saumaton.catalogue.schemas import ImageIn, ProductIn, VariantIn
from saumaton.catalogue.services import add_images, create_product
from saumaton.config import get_settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.demo import images as pictures
from saumaton.demo.names import DEMO_MOBILE_PREFIXES, ascii_slug, random_name
from saumaton.followups.defaults import load_defaults as load_followup_defaults
from saumaton.inventory.services import Move, apply_moves
from saumaton.locations.models import Channel, Location
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from saumaton.pricing.changes import PriceChangeIn, change_prices
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.staff.services import create_staff
from saumaton.tills.drawer import open_session

SEED = 42
HERO_SLUG = "kaunis-iho-silk-foundation"
# GS1 Finland prefixes are 640–649; "6409876" is this fictional company's prefix.
EAN_COMPANY_PREFIX = "6409876"

# (email, password, role description)
DEMO_LOGINS: tuple[tuple[str, str, str], ...] = (
    ("omistaja@kaunisiho.fi", "demo-owner-1", "owner, every location"),
    ("kassa1@kaunisiho.fi", "demo-kassa-1", "cashier, Kauppa Helsinki (store-1)"),
    ("kassa2@kaunisiho.fi", "demo-kassa-2", "cashier, Kauppa Tampere (store-2)"),
    ("paallikko@kaunisiho.fi", "demo-manager-1", "manager, every location"),
    ("asiakaspalvelu@kaunisiho.fi", "demo-service-1", "customer service, every location"),
)
# email -> (display name, role, location code or None for everywhere)
_STAFF: dict[str, tuple[str, str, str | None]] = {
    "omistaja@kaunisiho.fi": ("Outi Omistaja", "owner", None),
    "kassa1@kaunisiho.fi": ("Kaisa Kassinen", "cashier", "store-1"),
    "kassa2@kaunisiho.fi": ("Tero Tamminen", "cashier", "store-2"),
    "paallikko@kaunisiho.fi": ("Pia Päällikkö", "manager", None),
    "asiakaspalvelu@kaunisiho.fi": ("Anni Asiakas", "service", None),
}


class DemoAlreadyLoaded(Conflict):
    code = "demo_already_loaded"


@dataclass(frozen=True)
class DemoSummary:
    locations: int
    products: int
    variants: int
    customers: int
    orders: int
    hero_slug: str
    hero_ean: str
    logins: list[tuple[str, str, str]] = field(default_factory=list)


# --- catalogue data --------------------------------------------------------------------

def _locations() -> dict[str, Location]:
    return {loc.code: loc for loc in (
        Location(code="store-1", name="Kauppa Helsinki", kind="store", sells_in_person=True,
                 ships_web_orders=True, pickup_point=True,
                 address="Aleksanterinkatu 21, 00100 Helsinki", web_priority=50),
        Location(code="store-2", name="Kauppa Tampere", kind="store", sells_in_person=True,
                 ships_web_orders=False, pickup_point=True,
                 address="Hämeenkatu 12, 33100 Tampere", web_priority=100),
        Location(code="warehouse", name="Keskusvarasto Vantaa", kind="warehouse",
                 sells_in_person=False, ships_web_orders=True, pickup_point=False,
                 address="Tikkurilantie 80, 01300 Vantaa", web_priority=10),
    )}


# (code, kind, name, location code)
_CHANNELS = (
    ("web", "webshop", "Verkkokauppa", None),
    ("pos-1", "pos", "Kassa Helsinki", "store-1"),
    ("pos-2", "pos", "Kassa Tampere", "store-2"),
    ("service", "service_desk", "Asiakaspalvelu", None),
    ("api", "api", "Rajapinta", None),
)
GIFT_CARD_SLUG = "lahjakortti"
# (slug, name, English name, parent slug)
_CATEGORIES = (
    ("makeup", "Meikit", "Make-up", None),
    ("skincare", "Ihonhoito", "Skincare", None),
    ("foundation", "Meikkivoiteet", "Foundations", "makeup"),
    ("concealer", "Peitevoiteet", "Concealers", "makeup"),
    ("lipstick", "Huulipunat", "Lipsticks", "makeup"),
    ("serums", "Seerumit", "Serums", "skincare"),
    ("cleansers", "Puhdistustuotteet", "Cleansers", "skincare"),
    ("moisturisers", "Kosteusvoiteet", "Moisturisers", "skincare"),
    ("sunscreen", "Aurinkosuojat", "Sunscreens", "skincare"),
)

_SHADE_WORDS = ("Lumi", "Posliini", "Vanilja", "Hiekka", "Hunaja", "Karamelli", "Kaneli",
                "Espresso")
# Light to deep, cool/neutral/warm undertone: 24 base shades.
BASE_SHADES = tuple(f"{level}{tone} {word}" for level, word in enumerate(_SHADE_WORDS, 1)
                    for tone in "CNW")
LIP_SHADES = (
    "101 Puolukka", "102 Mustikka", "103 Lakka", "104 Karpalo", "105 Vadelma", "106 Mansikka",
    "107 Kirsikka", "108 Ruusunmarja", "109 Kanerva", "110 Syysruska", "111 Revontuli",
    "112 Juhannus", "113 Punaherukka", "114 Variksenmarja", "115 Tyrni", "116 Pihlaja",
    "117 Kaneli", "118 Luumu", "119 Suklaa", "120 Sametti",
)


def _spread(shades: tuple[str, ...], n: int) -> list[str]:
    """n shades spread evenly over the range, lightest to deepest."""
    if n >= len(shades):
        return list(shades)
    return [shades[round(i * (len(shades) - 1) / (n - 1))] for i in range(n)]


@dataclass(frozen=True)
class _ProductSpec:
    slug: str
    name: str
    brand: str
    category: str
    sku: str
    description: str
    # (variant name, attributes, price in cents)
    variants: list[tuple[str, dict[str, str], int]]


def _shaded(shades: list[str], size: str, price: int) -> list[tuple[str, dict[str, str], int]]:
    return [(s, {"shade": s, "size": size}, price) for s in shades]


def _sized(*sizes: tuple[str, int]) -> list[tuple[str, dict[str, str], int]]:
    return [(size, {"size": size}, price) for size, price in sizes]


def _catalogue() -> list[_ProductSpec]:
    P = _ProductSpec
    return [
        P(HERO_SLUG, "Silk Foundation -meikkivoide", "Kaunis Iho", "foundation", "KI-SILK",
          "Kevyt, silkkisen mattainen meikkivoide, keskipeittävä. 24 sävyä.",
          _shaded(list(BASE_SHADES), "30 ml", 3999)),
        P("kaunis-iho-matte-foundation", "Matte Finish -meikkivoide", "Kaunis Iho",
          "foundation", "KI-MATTE", "Pitkäkestoinen mattainen meikkivoide rasvoittuvalle iholle.",
          _shaded(list(BASE_SHADES), "30 ml", 3490)),
        P("pohjoisvalo-skin-tint", "Skin Tint sävyttävä voide", "Pohjoisvalo", "foundation",
          "PV-TINT", "Kosteuttava, kevyesti sävyttävä voide luonnolliseen lopputulokseen.",
          _shaded(_spread(BASE_SHADES, 16), "40 ml", 2990)),
        P("kaunis-iho-cover-up-concealer", "Cover Up -peitevoide", "Kaunis Iho", "concealer",
          "KI-COVER", "Täyspeittävä peitevoide tummille silmänalusille ja punoitukselle.",
          _shaded(_spread(BASE_SHADES, 16), "6 ml", 2290)),
        P("pohjoisvalo-brightening-concealer", "Kirkastava peitevoide", "Pohjoisvalo",
          "concealer", "PV-BRIGHT", "Heijastava peitevoide, joka kirkastaa silmänympärysihoa.",
          _shaded(_spread(BASE_SHADES, 12), "5 ml", 2490)),
        P("kaunis-iho-satin-lipstick", "Satin-huulipuna", "Kaunis Iho", "lipstick", "KI-LIP",
          "Kosteuttava satiininen huulipuna, jossa on karpalonsiemenöljyä.",
          [(s, {"shade": s}, 2190) for s in LIP_SHADES]),
        P("tunturi-matte-velvet-lipstick", "Matte Velvet -huulipuna", "Tunturi", "lipstick",
          "TU-VELVET", "Samettisen mattainen, pitkäkestoinen huulipuna.",
          [(s, {"shade": s}, 1990) for s in _spread(LIP_SHADES, 14)]),
        P("tunturi-lip-gloss", "Huulikiilto", "Tunturi", "lipstick", "TU-GLOSS",
          "Tahmaamaton huulikiilto kevyellä sävyllä.",
          [(s, {"shade": s}, 1690) for s in _spread(LIP_SHADES, 10)]),
        P("kaunis-iho-vitamin-c-serum", "C-vitamiiniseerumi 15 %", "Kaunis Iho", "serums",
          "KI-VITC", "Kirkastava antioksidanttiseerumi aamuun.",
          _sized(("15 ml", 3290), ("30 ml", 4990))),
        P("lahde-hyaluronic-serum", "Hyaluronihapposeerumi", "Lähde", "serums", "LA-HYAL",
          "Kosteuttava seerumi kolmella hyaluronihapon molekyylikoolla.",
          _sized(("30 ml", 2990), ("50 ml", 4290))),
        P("kaunis-iho-niacinamide-serum", "Niasiiniamidiseerumi 10 %", "Kaunis Iho", "serums",
          "KI-NIA", "Tasoittaa ihon sävyä ja pienentää huokosia.",
          _sized(("30 ml", 2490), ("50 ml", 3490))),
        P("pohjoisvalo-retinol-serum", "Retinoliseerumi 0,3 %", "Pohjoisvalo", "serums",
          "PV-RETI", "Ihoa uudistava iltaseerumi.",
          _sized(("30 ml", 4490), ("50 ml", 5990))),
        P("lahde-peptide-serum", "Peptidiseerumi", "Lähde", "serums", "LA-PEPT",
          "Kiinteyttävä seerumi peptideillä ja kauraöljyllä.", _sized(("30 ml", 3990))),
        P("lahde-gentle-cleanser", "Hellävarainen puhdistusgeeli", "Lähde", "cleansers",
          "LA-CLEAN", "Saippuaton puhdistusgeeli herkälle iholle.",
          _sized(("150 ml", 1490), ("400 ml", 2690))),
        P("kaunis-iho-cleansing-balm", "Puhdistusbalsami", "Kaunis Iho", "cleansers", "KI-BALM",
          "Sulava balsami, joka poistaa meikin ja aurinkosuojan.", _sized(("100 ml", 2290))),
        P("tunturi-micellar-water", "Misellivesi", "Tunturi", "cleansers", "TU-MICEL",
          "Puhdistaa ja poistaa meikin ilman huuhtelua.",
          _sized(("200 ml", 1490), ("400 ml", 2190))),
        P("kaunis-iho-day-cream", "Kosteuttava päivävoide", "Kaunis Iho", "moisturisers",
          "KI-DAY", "Kevyt päivävoide normaalille ja kuivalle iholle.", _sized(("50 ml", 2990))),
        P("lahde-night-cream", "Ravitseva yövoide", "Lähde", "moisturisers", "LA-NIGHT",
          "Täyteläinen yövoide tyrniöljyllä.", _sized(("50 ml", 3490))),
        P("tunturi-frost-cream", "Pakkasvoide", "Tunturi", "moisturisers", "TU-FROST",
          "Suojaa kasvoja pakkaselta ja tuulelta.", _sized(("50 ml", 1990), ("100 ml", 2990))),
        P("pohjoisvalo-gel-cream", "Geelivoide", "Pohjoisvalo", "moisturisers", "PV-GEL",
          "Raikas geelivoide rasvoittuvalle iholle.", _sized(("50 ml", 2690))),
        P("kaunis-iho-daily-sun-spf50", "Daily Sun SPF 50", "Kaunis Iho", "sunscreen",
          "KI-SUN50", "Kevyt päivittäinen aurinkosuoja kasvoille.",
          _sized(("50 ml", 2490), ("100 ml", 3490))),
        P("tunturi-sun-fluid-spf30", "Aurinkofluidi SPF 30", "Tunturi", "sunscreen", "TU-SUN30",
          "Nopeasti imeytyvä aurinkofluidi.", _sized(("50 ml", 1990))),
        P("lahde-tinted-sunscreen-spf50", "Sävyttävä aurinkosuoja SPF 50", "Lähde", "sunscreen",
          "LA-TINT50", "Sävyttävä aurinkosuoja, joka tasoittaa ihon sävyä.",
          _shaded(_spread(BASE_SHADES, 6), "40 ml", 2790)),
    ]


def _pictures(media: Path, spec: _ProductSpec, product_id: int, variant_ids: list[int]
              ) -> list[ImageIn]:
    """The product's picture, then a swatch for each shade (files written now)."""
    url = pictures.write(media, f"demo/{spec.slug}.svg",
                         pictures.product_svg(spec.name, spec.brand, spec.category))
    out = [ImageIn(product_id=product_id, url=url, position=0,
                   alt=pictures.picture_alt(spec.name, spec.brand, spec.category))]
    for i, (vid, (_, attrs, _)) in enumerate(zip(variant_ids, spec.variants, strict=True), 1):
        shade = attrs.get("shade")
        if shade:
            url = pictures.write(media, f"demo/{spec.slug}-{i:02d}.svg",
                                 pictures.swatch_svg(shade))
            out.append(ImageIn(product_id=product_id, variant_id=vid, url=url, position=i,
                               alt=pictures.swatch_alt(spec.name, shade)))
    return out


def _cost(price_cents: int) -> int:
    """What a unit cost the shop, VAT excluded: about 40 % of the net price."""
    return round(price_cents / 1.255 * 0.4)


def ean13(n: int) -> str:
    """The n-th EAN-13 of the demo company (n < 100 000), check digit included."""
    body = f"{EAN_COMPANY_PREFIX}{n:05d}"
    return body + str(stdnum_ean.calc_check_digit(body))


def _phone(rng: random.Random) -> str:
    """A Finnish mobile number in national format, e.g. '040 123 4567'."""
    digits = f"{rng.randrange(10_000_000):07d}"
    return f"{rng.choice(DEMO_MOBILE_PREFIXES)} {digits[:3]} {digits[3:]}"


# --- loading ----------------------------------------------------------------------------


async def load_demo(db: Database, *, media_dir: Path | None = None) -> DemoSummary:
    """Load the demo shop into an empty, migrated database.

    Product pictures and shade swatches (SVG) are written under `media_dir`
    (default: the settings' media folder, served at /media/).
    Raises DemoAlreadyLoaded if the database already has locations, so the demo
    is never loaded twice (nor on top of real data).
    """
    rng = random.Random(SEED)
    async with db.reader() as s:
        if await s.scalar(select(func.count()).select_from(Location)):
            raise DemoAlreadyLoaded(
                "the database already has locations; the demo shop loads only into an empty "
                "database")

    # Locations, channels, categories.
    async with db.uow() as uow:
        s = uow.session
        locations = _locations()
        s.add_all(locations.values())
        await s.flush()
        s.add_all(Channel(code=code, kind=kind, name=name,
                          location_id=locations[loc].id if loc else None)
                  for code, kind, name, loc in _CHANNELS)
        categories: dict[str, Category] = {}
        for position, (slug, name, name_en, parent) in enumerate(_CATEGORIES):
            cat = Category(slug=slug, name=name, name_en=name_en, position=position,
                           parent_id=categories[parent].id if parent else None)
            s.add(cat)
            await s.flush()
            categories[slug] = cat
        # After-purchase e-mails for skincare and shade products (docs/follow-ups.md).
        await load_followup_defaults(uow)
        await uow.commit()
    loc_ids = {code: loc.id for code, loc in locations.items()}

    # Catalogue.
    variant_ids: list[int] = []
    product_ids: dict[str, int] = {}
    variants_by_category: dict[str, list[int]] = {}
    hero_ean = ""
    n = 0
    media = media_dir or get_settings().media_dir()
    images: list[ImageIn] = []
    async with db.uow() as uow:
        for spec in _catalogue():
            variants = []
            for i, (vname, attrs, price) in enumerate(spec.variants, 1):
                n += 1
                variants.append(VariantIn(sku=f"{spec.sku}-{i:02d}", ean=ean13(n), name=vname,
                                          attributes=attrs, price_cents=price,
                                          cost_cents=_cost(price)))
            out = await create_product(uow, SYSTEM, ProductIn(
                slug=spec.slug, name=spec.name, brand=spec.brand, description=spec.description,
                category_slug=spec.category, vat_class="standard", variants=variants))
            product_ids[spec.slug] = out.id
            ids = [v.id for v in out.variants]
            variant_ids.extend(ids)
            variants_by_category.setdefault(spec.category, []).extend(ids)
            if spec.slug == HERO_SLUG:
                hero_ean = out.variants[0].ean or ""
            images.extend(_pictures(media, spec, out.id, ids))
        # A gift card: no stock; VAT is due on what it buys (docs/gift-cards.md).
        variants_gc = []
        for vname, price in (("25 €", 2500), ("50 €", 5000), ("100 €", 10000)):
            n += 1
            variants_gc.append(VariantIn(sku=f"GIFT-{price // 100:03d}", ean=ean13(n),
                                         name=vname, attributes={"value": vname},
                                         price_cents=price))
        gift = await create_product(uow, SYSTEM, ProductIn(
            slug=GIFT_CARD_SLUG, name="Lahjakortti / Gift card", brand="Saumaton",
            description="Lahjakortti, jonka voi käyttää verkkokaupassa ja kaikissa "
                        "myymälöissä osissa kolmen vuoden ajan. / A gift card to spend in "
                        "the webshop and in every store, in parts, for three years.",
            vat_class="zero", gift_card=True, variants=variants_gc))
        product_ids[GIFT_CARD_SLUG] = gift.id
        images.append(ImageIn(
            product_id=gift.id, position=0, alt="Lahjakortti / Gift card",
            url=pictures.write(media, f"demo/{GIFT_CARD_SLUG}.svg",
                               pictures.gift_card_svg("Lahjakortti"))))
        await add_images(uow, SYSTEM, images)
        await uow.commit()

    # Opening stock, one receipt per variant and location.
    ranges = {"warehouse": (20, 80), "store-1": (3, 15), "store-2": (2, 10)}
    stock: dict[tuple[int, int], int] = {}
    moves = []
    for vid in variant_ids:
        for code, (lo, hi) in ranges.items():
            qty = rng.randint(lo, hi)
            stock[(vid, loc_ids[code])] = qty
            moves.append(Move(vid, loc_ids[code], qty, "receipt", reason="avausvarasto",
                              reference="demo-opening-stock"))
    async with db.uow() as uow:
        await apply_moves(uow, SYSTEM, moves)
        await uow.commit()

    # Campaigns: one in every channel, one limited to the webshop.
    now = utcnow()
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Syysale -20 %", kind="percent", value=2000,
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30),
            category_ids=[categories["serums"].id]))
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Verkkokaupan aurinkoviikot -15 %", kind="percent", value=1500,
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=14),
            product_ids=[product_ids["kaunis-iho-daily-sun-spf50"]], channel_codes=["web"]))
        # The owner's examples from docs/campaigns.md: 3 for 2 on every lipstick in every
        # channel, and a members-only weekend price on moisturisers.
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Huulipunat 3 kahden hinnalla", kind="x_for_y", buy_quantity=3,
            pay_quantity=2, starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=21), category_ids=[categories["lipstick"].id]))
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Jäsenten viikonloppu -15 %", kind="percent", value=1500, min_tier="member",
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=3),
            category_ids=[categories["moisturisers"].id]))
        await uow.commit()
    # A price change scheduled for next Monday 06:00 in the shop's time zone.
    zone = ZoneInfo(get_settings().timezone)
    today = now.astimezone(zone).date()
    monday = today + timedelta(days=7 - today.weekday())
    async with db.uow() as uow:
        hero = list((await uow.session.scalars(select(Variant.id).where(
            Variant.product_id == product_ids[HERO_SLUG]))).all())
        await change_prices(uow, SYSTEM, PriceChangeIn(
            variant_ids=hero, price_cents=3790, note="Uusi hinnasto",
            effective_at=datetime.combine(monday, time(6, 0), zone)))
        await uow.commit()

    # Staff.
    async with db.uow() as uow:
        for email, password, _ in DEMO_LOGINS:
            name, role, loc_code = _STAFF[email]
            await create_staff(uow, email, name, password,
                               [(role, loc_ids[loc_code] if loc_code else None)])
        await uow.commit()

    # Customers.
    customer_ids: list[int] = []
    seen: set[str] = set()
    async with db.uow() as uow:
        while len(customer_ids) < 40:
            first, last = random_name(rng)
            email = f"{ascii_slug(first)}.{ascii_slug(last)}@example.com"
            if email in seen:
                continue
            seen.add(email)
            i = len(customer_ids)
            c = await create_customer(uow, SYSTEM, CustomerIn(
                first_name=first, last_name=last, email=email,
                phone=_phone(rng) if i % 4 != 3 else None, issue_card=i % 2 == 0))
            customer_ids.append(c.id)
        await uow.commit()

    # Orders: in both stores (paid at the till) and in the webshop. The stores' tills are
    # open (as during a shop's day) so their sales are in the drawers' X and Z reports.
    async with db.uow() as uow:
        for store in ("store-1", "store-2"):
            await open_session(uow, SYSTEM, loc_ids[store], 15000, f"demo-open-{store}")
        await uow.commit()
    orders = 0
    plan = ["pos-1"] * 35 + ["pos-2"] * 25 + ["web"] * 40
    rng.shuffle(plan)
    store_of = {"pos-1": loc_ids["store-1"], "pos-2": loc_ids["store-2"]}
    for k, channel in enumerate(plan):
        lines: dict[int, int] = {}
        want = rng.choice((1, 1, 2, 2, 3, 4))
        for _ in range(50):  # skip what this store has run out of
            if len(lines) >= want:
                break
            category = rng.choice(sorted(variants_by_category))
            vid = rng.choice(variants_by_category[category])
            qty = 1 if rng.random() < 0.8 else 2
            if channel in store_of:
                key = (vid, store_of[channel])
                if stock[key] < lines.get(vid, 0) + qty:
                    continue
            lines[vid] = lines.get(vid, 0) + qty
        if not lines:
            continue
        if channel in store_of:
            for vid, qty in lines.items():
                stock[(vid, store_of[channel])] -= qty
            customer_id = rng.choice(customer_ids) if rng.random() < 0.7 else None
            payments = ([PaymentIn(method="cash")] if rng.random() < 0.35 else
                        [PaymentIn(method="card", terminal_confirmed=True)])
        else:
            for vid, qty in lines.items():  # the warehouse ships first
                stock[(vid, loc_ids["warehouse"])] -= qty
            customer_id = rng.choice(customer_ids)
            payments = ([PaymentIn(method="card", terminal_confirmed=True,
                                   reference=f"verkkomaksu-{k + 1:04d}")]
                        if rng.random() < 0.75 else [])
        await place_order(db, SYSTEM, OrderIn(
            channel=channel, customer_id=customer_id, payments=payments,
            lines=[LineIn(variant_id=vid, quantity=qty) for vid, qty in lines.items()]))
        orders += 1

    return DemoSummary(
        locations=len(locations), products=len(product_ids),
        variants=len(variant_ids) + len(variants_gc),
        customers=len(customer_ids), orders=orders, hero_slug=HERO_SLUG, hero_ean=hero_ean,
        logins=list(DEMO_LOGINS),
    )
