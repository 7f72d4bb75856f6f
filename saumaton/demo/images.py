"""Pictures for the demo shop: one small SVG per product and a colour swatch per shade.

Drawn from a few shapes (pump bottle, dropper, lipstick, tube, jar) in the brand's
colour, so the demo needs no image files in the repository and loads in a moment.
"""

from __future__ import annotations

import colorsys
import re
from html import escape
from pathlib import Path

BRAND_COLOURS = {"Kaunis Iho": "#7a4b5a", "Pohjoisvalo": "#3d6b8c", "Tunturi": "#4b6b4f",
                 "Lähde": "#8a6d3b"}
# category -> (shape, what the picture shows, in Finnish for the alt text)
SHAPES = {
    "foundation": ("pump", "pumppupullo"), "concealer": ("tube", "tuubi"),
    "lipstick": ("lipstick", "huulipunapuikko"), "serums": ("dropper", "pipettipullo"),
    "cleansers": ("pump", "pumppupullo"), "moisturisers": ("jar", "voidepurkki"),
    "sunscreen": ("tube", "tuubi"),
}
LIP_COLOURS = {
    "Puolukka": "#c0273b", "Mustikka": "#4a2a5e", "Lakka": "#e8a03a", "Karpalo": "#9e1b32",
    "Vadelma": "#c2185b", "Mansikka": "#e53950", "Kirsikka": "#8b0a2a",
    "Ruusunmarja": "#d2452f", "Kanerva": "#a05a8c", "Syysruska": "#b5532a",
    "Revontuli": "#d04f8a", "Juhannus": "#f07c8a", "Punaherukka": "#b0102e",
    "Variksenmarja": "#2e1a2a", "Tyrni": "#e07b1f", "Pihlaja": "#c8401e", "Kaneli": "#8d4a2f",
    "Luumu": "#5e2340", "Suklaa": "#4e2a1e", "Sametti": "#6d1a36",
}
_BASE_SHADE = re.compile(r"(\d)([CNW]) ")


def shade_colour(shade: str) -> str:
    """A plausible colour for a demo shade name ('3W Vanilja', '101 Puolukka')."""
    m = _BASE_SHADE.match(shade)
    if m:  # skin tones: level 1 (lightest) .. 8 (deepest); cool, neutral or warm
        level, tone = int(m[1]), m[2]
        hue = {"C": 15, "N": 24, "W": 32}[tone] / 360
        r, g, b = colorsys.hls_to_rgb(hue, 0.88 - level * 0.075, 0.42 + level * 0.02)
        return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
    word = shade.split(" ", 1)[-1]
    return LIP_COLOURS.get(word, "#b05070")


def _shape(kind: str, colour: str, accent: str) -> str:
    if kind == "lipstick":
        return (f'<rect x="160" y="210" width="80" height="130" rx="6" fill="{colour}"/>'
                f'<rect x="170" y="150" width="60" height="70" fill="#d9c9a3"/>'
                f'<path d="M175 150 V95 L225 70 V150 Z" fill="{accent}"/>')
    if kind == "dropper":
        return (f'<rect x="140" y="170" width="120" height="170" rx="18" fill="{colour}"/>'
                f'<rect x="170" y="130" width="60" height="45" rx="6" fill="#333"/>'
                f'<ellipse cx="200" cy="110" rx="22" ry="30" fill="#222"/>')
    if kind == "tube":
        return (f'<path d="M150 90 H250 L235 300 H165 Z" fill="{colour}"/>'
                f'<rect x="165" y="300" width="70" height="40" rx="6" fill="#333"/>'
                f'<rect x="150" y="82" width="100" height="12" fill="{accent}"/>')
    if kind == "jar":
        return (f'<rect x="110" y="200" width="180" height="130" rx="20" fill="{colour}"/>'
                f'<rect x="100" y="160" width="200" height="50" rx="10" fill="#333"/>')
    return (f'<rect x="135" y="150" width="130" height="190" rx="22" fill="{colour}"/>'
            f'<rect x="180" y="110" width="40" height="42" fill="#333"/>'
            f'<path d="M170 110 H230 V95 H262 V80 H170 Z" fill="#333"/>')


def product_svg(name: str, brand: str, category: str, accent: str = "#e8d5dc") -> str:
    colour = BRAND_COLOURS.get(brand, "#7a4b5a")
    kind = SHAPES.get(category, ("pump", ""))[0]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" role="img">'
        f'<title>{escape(name)}</title><rect width="400" height="400" fill="#f6eff2"/>'
        f'{_shape(kind, colour, accent)}'
        f'<text x="200" y="375" font-family="sans-serif" font-size="22" fill="#5c3443" '
        f'text-anchor="middle">{escape(brand)}</text></svg>')


def gift_card_svg(title: str) -> str:
    """A gift card: a card with a ribbon."""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" role="img">'
        f'<title>{escape(title)}</title><rect width="400" height="400" fill="#f6eff2"/>'
        '<rect x="60" y="110" width="280" height="180" rx="18" fill="#7a4b5a"/>'
        '<rect x="60" y="185" width="280" height="26" fill="#e8d5dc"/>'
        '<rect x="150" y="110" width="26" height="180" fill="#e8d5dc"/>'
        '<text x="200" y="345" font-family="sans-serif" font-size="26" fill="#5c3443" '
        f'text-anchor="middle">{escape(title)}</text></svg>')


def swatch_svg(shade: str) -> str:
    colour = shade_colour(shade)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" role="img">'
        f'<title>{escape(shade)}</title><rect width="400" height="400" fill="#f6eff2"/>'
        f'<circle cx="200" cy="180" r="130" fill="{colour}"/>'
        f'<text x="200" y="375" font-family="sans-serif" font-size="26" fill="#2b2226" '
        f'text-anchor="middle">{escape(shade)}</text></svg>')


def picture_alt(name: str, brand: str, category: str) -> str:
    what = SHAPES.get(category, ("", "tuotekuva"))[1]
    return f"{brand} {name}, {what}" if brand else f"{name}, {what}"


def swatch_alt(name: str, shade: str) -> str:
    return f"{name}, sävyn {shade} värinäyte"


def write(media_dir: Path, path: str, svg: str) -> str:
    """Write the picture at `path` under the media folder; returns its URL."""
    target = media_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(svg, encoding="utf-8")
    return f"/media/{path}"
