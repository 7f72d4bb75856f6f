"""Imports every business area's tables so metadata (and Alembic) sees them all."""

from saumaton.catalogue.models import Category, Product, Variant, VatClass, VatRate
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.base import Base
from saumaton.db.idempotency import IdempotencyRecord
from saumaton.events.models import OutboxEvent
from saumaton.inventory.models import StockLevel, StockMovement, StockReservation
from saumaton.locations.models import Channel, Location
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment
from saumaton.pricing.models import Campaign, CampaignChannel, CampaignTarget
from saumaton.staff.models import ApiToken, Staff, StaffRole

__all__ = [
    "ApiToken", "Base", "Campaign", "CampaignChannel", "CampaignTarget", "Category", "Channel",
    "Customer", "CustomerIdentity", "IdempotencyRecord", "Location", "Order", "OrderLine",
    "OutboxEvent", "Payment",
    "Product", "Staff", "StaffRole", "StockLevel", "StockMovement", "StockReservation", "Variant",
    "VatClass", "VatRate",
]
