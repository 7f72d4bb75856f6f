"""Sensible starting sequences for a cosmetics shop (the demo shop loads them; the owner
edits them in the back office): how to use a skincare product, with a refill reminder
after the category's usual 60 days, and a question about the shade of a foundation or a
concealer."""

from __future__ import annotations

from sqlalchemy import select

from saumaton.catalogue.models import Category
from saumaton.core.actor import SYSTEM
from saumaton.db.uow import UnitOfWork
from saumaton.followups.sequences import SequenceIn, StepIn, create_sequence

HOW_TO_USE = StepIn(
    kind="how_to_use", delay_days=3,
    subject_fi="Näin saat tuotteesta {product} kaiken irti",
    body_fi="Hei {first_name},\n\nkiitos, että valitsit tuotteen {product}! Muutama vinkki:\n"
            "annostele herneen kokoinen määrä puhtaalle iholle aamuin illoin ja taputtele "
            "kevyesti. Anna imeytyä hetki ennen seuraavaa tuotetta.\n\n"
            "Kysyttävää? Vastaa tähän viestiin tai poikkea myymälään.\n\n"
            "Terveisin\n{shop}",
    subject_en="Getting the most out of {product}",
    body_en="Hi {first_name},\n\nthank you for choosing {product}! A few tips: use a "
            "pea-sized amount on clean skin morning and evening and pat it in gently. Let "
            "it sink in for a moment before the next product.\n\n"
            "Questions? Reply to this e-mail or drop by the store.\n\n"
            "Best wishes,\n{shop}")
REFILL = StepIn(
    kind="refill", delay_days=0,
    subject_fi="Alkaako {product} olla lopuillaan?",
    body_fi="Hei {first_name},\n\nostit tuotteen {product} noin {refill_days} päivää "
            "sitten, joten se saattaa pian loppua. Täydennä ajoissa verkkokaupasta "
            "{shop_url} tai myymälästä.\n\nTerveisin\n{shop}",
    subject_en="Running low on {product}?",
    body_en="Hi {first_name},\n\nyou bought {product} about {refill_days} days ago, so it "
            "may run out soon. Stock up in time in the webshop {shop_url} or at the "
            "store.\n\nBest wishes,\n{shop}")
SHADE = StepIn(
    kind="shade", delay_days=7,
    subject_fi="Osuiko sävy {shade} kohdalleen?",
    body_fi="Hei {first_name},\n\nostit tuotteen {product} sävyssä {shade}. Onko sävy "
            "sinulle sopiva? Jos ei, tule myymälään kokeilemaan toista sävyä – autamme "
            "mielellämme löytämään oikean.\n\nTerveisin\n{shop}",
    subject_en="Is {shade} the right shade?",
    body_en="Hi {first_name},\n\nyou bought {product} in {shade}. Does the shade suit you? "
            "If not, come to the store to try another one – we are happy to help you find "
            "the right one.\n\nBest wishes,\n{shop}")

# (name, category slug, refill days, steps)
DEFAULTS = (
    ("Ihonhoito: käyttövinkit ja täyttömuistutus", "skincare", 60, (HOW_TO_USE, REFILL)),
    ("Meikkivoiteet: sävy", "foundation", None, (SHADE,)),
    ("Peitevoiteet: sävy", "concealer", None, (SHADE,)),
)


async def load_defaults(uow: UnitOfWork) -> int:
    """The default sequences for the categories that exist; how many were created."""
    slugs = {str(slug): int(cid) for slug, cid in
             (await uow.session.execute(select(Category.slug, Category.id))).all()}
    n = 0
    for name, slug, refill_days, steps in DEFAULTS:
        if slug in slugs:
            await create_sequence(uow, SYSTEM, SequenceIn(
                name=name, category_id=slugs[slug], enabled=True, refill_days=refill_days,
                steps=list(steps)))
            n += 1
    return n
