"""Request and response bodies of the orders domain (pydantic)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from ..models.orders import OrderStatus, PaymentMethod


class OrderSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    number: str = Field(..., max_length=20)
    customer_id: int = Field(..., gt=0)
    status: OrderStatus = OrderStatus.NEW
    total: Decimal = Field(..., max_digits=12, decimal_places=2)
    placed_at: dt.datetime | None = None


class OrderLineSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    order_id: int = Field(..., gt=0)
    variant_id: int = Field(..., gt=0)
    quantity: int = Field(..., gt=0)
    unit_price: Decimal = Field(..., max_digits=12, decimal_places=2)


class PaymentSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    order_id: int = Field(..., gt=0)
    method: PaymentMethod = PaymentMethod.CARD
    amount: Decimal = Field(..., max_digits=12, decimal_places=2)
    reference: str = Field(..., max_length=64)
    paid_at: dt.datetime | None = None


class RefundSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    payment_id: int = Field(..., gt=0)
    amount: Decimal = Field(..., max_digits=12, decimal_places=2)
    reason: str
    refunded_at: dt.datetime | None = None


class InvoiceSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    order_id: int = Field(..., gt=0)
    number: str = Field(..., max_length=20)
    issued_on: dt.date
    due_on: dt.date


class ShipmentSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    order_id: int = Field(..., gt=0)
    carrier: str = Field(..., max_length=40)
    tracking: str | None = Field(None, max_length=64)
    shipped_at: dt.datetime | None = None


class ShipmentItemSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    shipment_id: int = Field(..., gt=0)
    order_line_id: int = Field(..., gt=0)
    quantity: int = Field(..., gt=0)


class CouponSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    code: str = Field(..., max_length=32, min_length=1)
    percent_off: int = Field(..., ge=0, le=100)
    valid_until: dt.date | None = None
    uses_left: int = Field(..., ge=0)


class CouponRedemptionSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    coupon_id: int = Field(..., gt=0)
    order_id: int = Field(..., gt=0)
    redeemed_at: dt.datetime | None = None
