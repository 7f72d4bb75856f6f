"""Locations (stores, warehouses) and the channels that sell through them."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from saumaton.db.base import Base


class Location(Base):
    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # store | warehouse
    sells_in_person: Mapped[bool] = mapped_column(Boolean, default=False)
    ships_web_orders: Mapped[bool] = mapped_column(Boolean, default=False)
    pickup_point: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[str] = mapped_column(String(300), default="")
    # Lower ships first when several locations can fulfil a web order.
    web_priority: Mapped[int] = mapped_column(Integer, default=100)
    # The store's own return policy for its sales (days from the sale); web orders have
    # the 14-day withdrawal right instead (Settings.web_return_days).
    return_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")


class Channel(Base):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # webshop | pos | service_desk | api
    name: Mapped[str] = mapped_column(String(200))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), nullable=True)
