"""Fictional Finnish people for demo and benchmark data."""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Aino", "Eevi", "Helmi", "Ilona", "Kerttu", "Lilja", "Linnea", "Maija", "Minea", "Olivia",
    "Pihla", "Saara", "Sofia", "Tuula", "Venla", "Aada", "Anneli", "Elina", "Hanna", "Johanna",
    "Katja", "Laura", "Marjatta", "Noora", "Päivi", "Riikka", "Satu", "Sirpa", "Tiina", "Ulla",
    "Eino", "Elias", "Juhani", "Kalle", "Lauri", "Leevi", "Matti", "Mikko", "Onni", "Pekka",
    "Sami", "Tapio", "Toni", "Veeti", "Väinö", "Antti", "Jari", "Jussi", "Timo", "Ville",
)
LAST_NAMES = (
    "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine", "Heikkinen",
    "Koskinen", "Järvinen", "Lehtonen", "Lehtinen", "Saarinen", "Salminen", "Heinonen",
    "Niemi", "Heikkilä", "Kinnunen", "Salonen", "Turunen", "Salo", "Laitinen", "Tuominen",
    "Rantanen", "Karjalainen", "Jokinen", "Mattila", "Savolainen", "Lahtinen", "Ahonen",
    "Hiltunen", "Leinonen", "Kettunen", "Räsänen", "Pitkänen", "Aaltonen", "Miettinen",
    "Anttila", "Lindholm", "Väisänen",
)
# Finnish mobile prefixes (national format) used by the demo shop's own customers.
DEMO_MOBILE_PREFIXES = ("040", "050")

_ASCII = str.maketrans({"ä": "a", "ö": "o", "å": "a", "Ä": "A", "Ö": "O", "Å": "A"})


def ascii_slug(name: str) -> str:
    """'Päivi' -> 'paivi': for the local part of an e-mail address."""
    return name.translate(_ASCII).lower().replace(" ", "")


def random_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
