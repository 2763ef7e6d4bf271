"""Routes of the orders domain: a list and a create route per table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import SessionDep
from ..models.orders import Coupon, CouponRedemption, Invoice, Order, OrderLine, Payment, Refund, Shipment, ShipmentItem
from ..schemas.orders import (
    CouponRedemptionSchema,
    CouponSchema,
    InvoiceSchema,
    OrderLineSchema,
    OrderSchema,
    PaymentSchema,
    RefundSchema,
    ShipmentItemSchema,
    ShipmentSchema,
)

router = APIRouter(tags=["orders"])


@router.get("/orders", response_model=list[OrderSchema])
def list_orders(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    customer_id: int | None = None,
) -> list[Order]:
    query = select(Order).order_by(Order.id).limit(limit).offset(offset)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    return list(session.scalars(query))


@router.post("/orders", response_model=OrderSchema, status_code=status.HTTP_201_CREATED)
def create_order(body: OrderSchema, session: SessionDep) -> Order:
    row = Order(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing order") from exc
    session.refresh(row)
    return row


@router.get("/order-lines", response_model=list[OrderLineSchema])
def list_order_lines(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    order_id: int | None = None,
) -> list[OrderLine]:
    query = select(OrderLine).order_by(OrderLine.id).limit(limit).offset(offset)
    if order_id is not None:
        query = query.where(OrderLine.order_id == order_id)
    return list(session.scalars(query))


@router.post("/order-lines", response_model=OrderLineSchema, status_code=status.HTTP_201_CREATED)
def create_order_line(body: OrderLineSchema, session: SessionDep) -> OrderLine:
    row = OrderLine(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing order line") from exc
    session.refresh(row)
    return row


@router.get("/payments", response_model=list[PaymentSchema])
def list_payments(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    order_id: int | None = None,
) -> list[Payment]:
    query = select(Payment).order_by(Payment.id).limit(limit).offset(offset)
    if order_id is not None:
        query = query.where(Payment.order_id == order_id)
    return list(session.scalars(query))


@router.post("/payments", response_model=PaymentSchema, status_code=status.HTTP_201_CREATED)
def create_payment(body: PaymentSchema, session: SessionDep) -> Payment:
    row = Payment(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing payment") from exc
    session.refresh(row)
    return row


@router.get("/refunds", response_model=list[RefundSchema])
def list_refunds(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    payment_id: int | None = None,
) -> list[Refund]:
    query = select(Refund).order_by(Refund.id).limit(limit).offset(offset)
    if payment_id is not None:
        query = query.where(Refund.payment_id == payment_id)
    return list(session.scalars(query))


@router.post("/refunds", response_model=RefundSchema, status_code=status.HTTP_201_CREATED)
def create_refund(body: RefundSchema, session: SessionDep) -> Refund:
    row = Refund(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing refund") from exc
    session.refresh(row)
    return row


@router.get("/invoices", response_model=list[InvoiceSchema])
def list_invoices(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    order_id: int | None = None,
) -> list[Invoice]:
    query = select(Invoice).order_by(Invoice.id).limit(limit).offset(offset)
    if order_id is not None:
        query = query.where(Invoice.order_id == order_id)
    return list(session.scalars(query))


@router.post("/invoices", response_model=InvoiceSchema, status_code=status.HTTP_201_CREATED)
def create_invoice(body: InvoiceSchema, session: SessionDep) -> Invoice:
    row = Invoice(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing invoice") from exc
    session.refresh(row)
    return row


@router.get("/shipments", response_model=list[ShipmentSchema])
def list_shipments(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    order_id: int | None = None,
) -> list[Shipment]:
    query = select(Shipment).order_by(Shipment.id).limit(limit).offset(offset)
    if order_id is not None:
        query = query.where(Shipment.order_id == order_id)
    return list(session.scalars(query))


@router.post("/shipments", response_model=ShipmentSchema, status_code=status.HTTP_201_CREATED)
def create_shipment(body: ShipmentSchema, session: SessionDep) -> Shipment:
    row = Shipment(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing shipment") from exc
    session.refresh(row)
    return row


@router.get("/shipment-items", response_model=list[ShipmentItemSchema])
def list_shipment_items(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    shipment_id: int | None = None,
) -> list[ShipmentItem]:
    query = select(ShipmentItem).order_by(ShipmentItem.id).limit(limit).offset(offset)
    if shipment_id is not None:
        query = query.where(ShipmentItem.shipment_id == shipment_id)
    return list(session.scalars(query))


@router.post("/shipment-items", response_model=ShipmentItemSchema, status_code=status.HTTP_201_CREATED)
def create_shipment_item(body: ShipmentItemSchema, session: SessionDep) -> ShipmentItem:
    row = ShipmentItem(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing shipment item") from exc
    session.refresh(row)
    return row


@router.get("/coupons", response_model=list[CouponSchema])
def list_coupons(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Coupon]:
    return list(session.scalars(select(Coupon).order_by(Coupon.id).limit(limit).offset(offset)))


@router.post("/coupons", response_model=CouponSchema, status_code=status.HTTP_201_CREATED)
def create_coupon(body: CouponSchema, session: SessionDep) -> Coupon:
    row = Coupon(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing coupon") from exc
    session.refresh(row)
    return row


@router.get("/coupon-redemptions", response_model=list[CouponRedemptionSchema])
def list_coupon_redemptions(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    coupon_id: int | None = None,
) -> list[CouponRedemption]:
    query = select(CouponRedemption).order_by(CouponRedemption.id).limit(limit).offset(offset)
    if coupon_id is not None:
        query = query.where(CouponRedemption.coupon_id == coupon_id)
    return list(session.scalars(query))


@router.post("/coupon-redemptions", response_model=CouponRedemptionSchema, status_code=status.HTTP_201_CREATED)
def create_coupon_redemption(body: CouponRedemptionSchema, session: SessionDep) -> CouponRedemption:
    row = CouponRedemption(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing coupon redemption") from exc
    session.refresh(row)
    return row
