"""Card terminals at the till.

Today's terminals in Finnish stores are mostly standalone: the cashier keys the
amount into the terminal, the customer pays, and the cashier confirms in the till
that the terminal approved (`ManualTerminal`). An integrated terminal (one the till
drives over the network, e.g. through a payment provider's cloud API) implements
the same `CardTerminal` protocol; `tills.sales.sell` only needs to know whether the
charge was approved and its reference.

Offline, a standalone terminal can still take cards (it stores the payments and
sends them later); the till records those as `to_confirm` when the merchant allows
it (`SAUMATON_POS_OFFLINE_CARD`), to be checked against the terminal's report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TerminalResult:
    approved: bool
    reference: str = ""  # the terminal's or the provider's transaction reference
    message: str = ""  # why not approved, as the terminal says it


class CardTerminal(Protocol):
    """Charge `amount_cents` for the sale `sale_key` (idempotent on the key: asking
    again for the same sale returns the first result instead of charging twice)."""

    async def charge(self, amount_cents: int, sale_key: str) -> TerminalResult: ...


class ManualTerminal:
    """A standalone terminal: the cashier's "Terminal approved" is the result."""

    def __init__(self, cashier_confirmed: bool, reference: str = "") -> None:
        self.cashier_confirmed = cashier_confirmed
        self.reference = reference

    async def charge(self, amount_cents: int, sale_key: str) -> TerminalResult:
        if not self.cashier_confirmed:
            return TerminalResult(False, message="the cashier has not confirmed the terminal")
        return TerminalResult(True, reference=self.reference)
