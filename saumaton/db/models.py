"""Imports every business area's tables so metadata (and Alembic) sees them all."""

import saumaton.cardcash.models  # noqa: F401  (card terminal rows, flag resolutions)
from saumaton.analytics.models import AnalyticsEvent
from saumaton.audit.models import AuditEntry
from saumaton.catalogue.models import (
    Category,
    Product,
    ProductImage,
    Variant,
    VariantBarcode,
    VatClass,
    VatRate,
)
from saumaton.checkout.models import Cart, CartLine
from saumaton.csvio.models import ImportJob
from saumaton.customers.models import (
    AccountToken,
    Customer,
    CustomerAccount,
    CustomerAddress,
    CustomerConsent,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    CustomerPreference,
    CustomerSession,
    CustomerTag,
    PreferenceField,
    Segment,
)
from saumaton.db.base import Base
from saumaton.db.idempotency import IdempotencyRecord
from saumaton.events.models import OutboxEvent
from saumaton.followups.models import Followup, FollowupOrder, FollowupSequence, FollowupStep
from saumaton.giftcards.models import GiftCard, GiftCardEntry
from saumaton.inventory.models import (
    StockCount,
    StockCountLine,
    StockLevel,
    StockMovement,
    StockReservation,
    StockTransfer,
    StockTransferLine,
)
from saumaton.locations.models import Channel, Location
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order, OrderLine, SaleVoid
from saumaton.outbound_webhooks.models import (
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookSubscription,
)
from saumaton.payments.models import Payment, PaytrailPayment, Refund
from saumaton.pricing.models import (
    Campaign,
    CampaignChannel,
    CampaignTarget,
    PriceChange,
)
from saumaton.reports.journey_tables import CustomerChannel, CustomerJourney, JourneyRefresh
from saumaton.reports.models import SalesDaily, SalesDailyDay, SalesDailyItem
from saumaton.returns.models import Return, ReturnLine
from saumaton.service.models import CannedAnswer, ChatMessage, Conversation, Notice, NpsSurvey
from saumaton.settlements.models import PaytrailSettlement, SettlementLine, SettlementReportRequest
from saumaton.shopsettings.models import ShopSetting
from saumaton.staff.models import ApiToken, Staff, StaffLinkToken, StaffRole, StaffSession
from saumaton.throttle.models import LoginThrottle
from saumaton.tills.models import CashMovement, DrawerSession, Register
from saumaton.tryon.models import TryReservation

__all__ = [
    "AccountToken",
    "AnalyticsEvent",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Campaign",
    "CampaignChannel",
    "CampaignTarget",
    "CannedAnswer",
    "Cart",
    "CartLine",
    "CashMovement",
    "Category",
    "Channel",
    "ChatMessage",
    "Conversation",
    "Customer",
    "CustomerAccount",
    "CustomerAddress",
    "CustomerChannel",
    "CustomerConsent",
    "CustomerIdentity",
    "CustomerJourney",
    "CustomerMerge",
    "CustomerNote",
    "CustomerPreference",
    "CustomerSession",
    "CustomerTag",
    "DrawerSession",
    "Followup",
    "FollowupOrder",
    "FollowupSequence",
    "FollowupStep",
    "GiftCard",
    "GiftCardEntry",
    "IdempotencyRecord",
    "ImportJob",
    "JourneyRefresh",
    "Location",
    "LoginThrottle",
    "LoyaltyEntry",
    "Notice",
    "NpsSurvey",
    "Order",
    "OrderLine",
    "OutboxEvent",
    "OutgoingMail",
    "Payment",
    "PaytrailPayment",
    "PaytrailSettlement",
    "PreferenceField",
    "PriceChange",
    "Product",
    "ProductImage",
    "Refund",
    "Register",
    "Return",
    "ReturnLine",
    "SaleVoid",
    "SalesDaily",
    "SalesDailyDay",
    "SalesDailyItem",
    "Segment",
    "SettlementLine",
    "SettlementReportRequest",
    "ShopSetting",
    "Staff",
    "StaffLinkToken",
    "StaffRole",
    "StaffSession",
    "StockCount",
    "StockCountLine",
    "StockLevel",
    "StockMovement",
    "StockReservation",
    "StockTransfer",
    "StockTransferLine",
    "TryReservation",
    "Variant",
    "VariantBarcode",
    "VatClass",
    "VatRate",
    "WebhookAttempt",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookSubscription",
]
