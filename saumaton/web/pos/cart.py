"""The POS cart lives in the page, not on the server.

Every POS form carries the cart as hidden inputs (`line` = "variant_id:qty",
in scan order) and the cart's idempotency key (`key`, made by the server when
the cart starts). Posting the same cart twice therefore pays once. The cart
holds only what the cashier chose; prices and totals are quoted by the core on
every render.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from starlette.datastructures import FormData

from saumaton.orders.schemas import LineIn

MAX_LINES = 200
MAX_QUANTITY = 10_000
_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_key() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class Cart:
    key: str = field(default_factory=new_key)
    lines: list[tuple[int, int]] = field(default_factory=list)  # (variant_id, quantity)

    @classmethod
    def from_form(cls, form: FormData) -> Cart:
        key = form.get("key")
        cart = cls(key=key if isinstance(key, str) and _KEY.fullmatch(key) else new_key())
        for raw in form.getlist("line")[:MAX_LINES]:
            if not isinstance(raw, str):
                continue
            vid, _, qty = raw.partition(":")
            if vid.isascii() and vid.isdigit() and qty.isascii() and qty.isdigit():
                cart.add(int(vid), int(qty))
        return cart

    def add(self, variant_id: int, quantity: int = 1) -> None:
        if not 1 <= variant_id <= 2**62 or quantity < 1:
            return
        for i, (vid, qty) in enumerate(self.lines):
            if vid == variant_id:
                self.lines[i] = (vid, min(MAX_QUANTITY, qty + quantity))
                return
        if len(self.lines) < MAX_LINES:
            self.lines.append((variant_id, min(MAX_QUANTITY, quantity)))

    def change(self, variant_id: int, delta: int) -> None:
        for i, (vid, qty) in enumerate(self.lines):
            if vid == variant_id:
                new = min(MAX_QUANTITY, qty + delta)
                if new < 1:
                    del self.lines[i]
                else:
                    self.lines[i] = (vid, new)
                return

    def remove(self, variant_id: int) -> None:
        self.lines = [(vid, qty) for vid, qty in self.lines if vid != variant_id]

    def copy(self) -> Cart:
        return Cart(self.key, list(self.lines))

    @property
    def state(self) -> list[str]:
        return [f"{vid}:{qty}" for vid, qty in self.lines]

    def line_ins(self) -> list[LineIn]:
        return [LineIn(variant_id=vid, quantity=qty) for vid, qty in self.lines]
