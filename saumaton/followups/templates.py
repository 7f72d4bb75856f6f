"""The follow-up mails' templates: plain text with a small, fixed set of placeholders.

`{first_name}` and the like are replaced by values we compute; nothing else is
evaluated (no attribute access, no format specs: the owner's text cannot reach into
the program). `{{` and `}}` are literal braces. An unknown name or a lone brace is a
field error when the template is saved, so a saved template always renders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

STEP_KINDS = ("how_to_use", "shade", "text", "refill")
PLACEHOLDERS = ("first_name", "product", "shade", "shop", "store", "order_number",
                "shop_url", "refill_days")
MAX_SUBJECT = 200
MAX_BODY = 5000

_NAME = re.compile(r"\{([^{}]*)\}")
_OPEN, _CLOSE = "\x00", "\x01"  # stand-ins for a doubled brace while parsing


@dataclass(frozen=True)
class TemplateProblem:
    code: str  # unknown_placeholder | stray_brace | required | too_long
    names: tuple[str, ...] = ()


def _shielded(text: str) -> str:
    return text.replace("{{", _OPEN).replace("}}", _CLOSE)


def problem(text: str, *, limit: int, required: bool = True) -> TemplateProblem | None:
    """What is wrong with a template, or None."""
    if not text.strip():
        return TemplateProblem("required") if required else None
    if len(text) > limit or "\x00" in text or "\x01" in text:
        return TemplateProblem("too_long")
    shielded = _shielded(text)
    unknown = tuple(dict.fromkeys(n for n in _NAME.findall(shielded) if n not in PLACEHOLDERS))
    if unknown:
        return TemplateProblem("unknown_placeholder", unknown)
    if "{" in _NAME.sub("", shielded) or "}" in _NAME.sub("", shielded):
        return TemplateProblem("stray_brace")
    return None


def fill(text: str, values: Mapping[str, str]) -> str:
    """The template with its placeholders replaced (a checked template; anything the
    check would refuse is left as written)."""
    shielded = _shielded(text)
    out = _NAME.sub(lambda m: values.get(m[1], m[0]), shielded)
    out = out.replace(_OPEN, "{").replace(_CLOSE, "}")
    if not values.get("first_name"):
        # "Hei {first_name}," without a name reads "Hei,", not "Hei ,".
        out = re.sub(r"[ \t]+([,.!?])", r"\1", out)
    return out


def paragraphs(text: str) -> list[str]:
    """The body's paragraphs (blank lines between), for the HTML version."""
    return [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
