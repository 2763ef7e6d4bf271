"""Routes of the inventory domain: a list and a create route per table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import SessionDep
from ..models.inventory import PurchaseOrder, PurchaseOrderLine, StockLevel, StockMovement, Supplier, Warehouse
from ..schemas.inventory import (
    PurchaseOrderLineSchema,
    PurchaseOrderSchema,
    StockLevelSchema,
    StockMovementSchema,
    SupplierSchema,
    WarehouseSchema,
)

router = APIRouter(tags=["inventory"])


@router.get("/warehouses", response_model=list[WarehouseSchema])
def list_warehouses(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Warehouse]:
    return list(session.scalars(select(Warehouse).order_by(Warehouse.id).limit(limit).offset(offset)))


@router.post("/warehouses", response_model=WarehouseSchema, status_code=status.HTTP_201_CREATED)
def create_warehouse(body: WarehouseSchema, session: SessionDep) -> Warehouse:
    row = Warehouse(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing warehouse") from exc
    session.refresh(row)
    return row


@router.get("/stock-levels", response_model=list[StockLevelSchema])
def list_stock_levels(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    warehouse_id: int | None = None,
) -> list[StockLevel]:
    query = select(StockLevel).order_by(StockLevel.id).limit(limit).offset(offset)
    if warehouse_id is not None:
        query = query.where(StockLevel.warehouse_id == warehouse_id)
    return list(session.scalars(query))


@router.post("/stock-levels", response_model=StockLevelSchema, status_code=status.HTTP_201_CREATED)
def create_stock_level(body: StockLevelSchema, session: SessionDep) -> StockLevel:
    row = StockLevel(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing stock level") from exc
    session.refresh(row)
    return row


@router.get("/suppliers", response_model=list[SupplierSchema])
def list_suppliers(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Supplier]:
    return list(session.scalars(select(Supplier).order_by(Supplier.id).limit(limit).offset(offset)))


@router.post("/suppliers", response_model=SupplierSchema, status_code=status.HTTP_201_CREATED)
def create_supplier(body: SupplierSchema, session: SessionDep) -> Supplier:
    row = Supplier(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing supplier") from exc
    session.refresh(row)
    return row


@router.get("/purchase-orders", response_model=list[PurchaseOrderSchema])
def list_purchase_orders(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    supplier_id: int | None = None,
) -> list[PurchaseOrder]:
    query = select(PurchaseOrder).order_by(PurchaseOrder.id).limit(limit).offset(offset)
    if supplier_id is not None:
        query = query.where(PurchaseOrder.supplier_id == supplier_id)
    return list(session.scalars(query))


@router.post("/purchase-orders", response_model=PurchaseOrderSchema, status_code=status.HTTP_201_CREATED)
def create_purchase_order(body: PurchaseOrderSchema, session: SessionDep) -> PurchaseOrder:
    row = PurchaseOrder(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing purchase order") from exc
    session.refresh(row)
    return row


@router.get("/purchase-order-lines", response_model=list[PurchaseOrderLineSchema])
def list_purchase_order_lines(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    purchase_order_id: int | None = None,
) -> list[PurchaseOrderLine]:
    query = select(PurchaseOrderLine).order_by(PurchaseOrderLine.id).limit(limit).offset(offset)
    if purchase_order_id is not None:
        query = query.where(PurchaseOrderLine.purchase_order_id == purchase_order_id)
    return list(session.scalars(query))


@router.post("/purchase-order-lines", response_model=PurchaseOrderLineSchema, status_code=status.HTTP_201_CREATED)
def create_purchase_order_line(body: PurchaseOrderLineSchema, session: SessionDep) -> PurchaseOrderLine:
    row = PurchaseOrderLine(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing purchase order line") from exc
    session.refresh(row)
    return row


@router.get("/stock-movements", response_model=list[StockMovementSchema])
def list_stock_movements(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    warehouse_id: int | None = None,
) -> list[StockMovement]:
    query = select(StockMovement).order_by(StockMovement.id).limit(limit).offset(offset)
    if warehouse_id is not None:
        query = query.where(StockMovement.warehouse_id == warehouse_id)
    return list(session.scalars(query))


@router.post("/stock-movements", response_model=StockMovementSchema, status_code=status.HTTP_201_CREATED)
def create_stock_movement(body: StockMovementSchema, session: SessionDep) -> StockMovement:
    row = StockMovement(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing stock movement") from exc
    session.refresh(row)
    return row
