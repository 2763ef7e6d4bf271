"""Request and response bodies of the inventory domain (pydantic)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..models.inventory import PurchaseOrderStatus, StockMovementReason


class WarehouseSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    code: str = Field(..., max_length=10, min_length=1)
    name: str = Field(..., max_length=120)
    city: str = Field(..., max_length=100)
    capacity: int = Field(..., ge=0)


class StockLevelSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    warehouse_id: int = Field(..., gt=0)
    variant_id: int = Field(..., gt=0)
    on_hand: int = Field(..., ge=0)
    reserved: int = Field(..., ge=0)


class SupplierSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    name: str = Field(..., max_length=160)
    contact_email: str = Field(..., max_length=254)
    lead_days: int = Field(..., ge=0)
    rating: float | None = None

    @field_validator("contact_email")
    @classmethod
    def _contact_email_has_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("not an e-mail address")
        return value.lower()


class PurchaseOrderSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    supplier_id: int = Field(..., gt=0)
    warehouse_id: int = Field(..., gt=0)
    status: PurchaseOrderStatus = PurchaseOrderStatus.DRAFT
    ordered_on: dt.date


class PurchaseOrderLineSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    purchase_order_id: int = Field(..., gt=0)
    variant_id: int = Field(..., gt=0)
    quantity: int = Field(..., gt=0)
    cost: Decimal = Field(..., max_digits=12, decimal_places=2)


class StockMovementSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    warehouse_id: int = Field(..., gt=0)
    variant_id: int = Field(..., gt=0)
    delta: int = Field(..., ge=0)
    reason: StockMovementReason = StockMovementReason.SALE
    moved_at: dt.datetime | None = None
