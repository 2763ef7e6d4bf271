"""Routes of the customers domain: a list and a create route per table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import SessionDep
from ..models.customers import Address, Cart, CartItem, Customer, Wishlist, WishlistItem
from ..schemas.customers import (
    AddressSchema,
    CartItemSchema,
    CartSchema,
    CustomerSchema,
    WishlistItemSchema,
    WishlistSchema,
)

router = APIRouter(tags=["customers"])


@router.get("/customers", response_model=list[CustomerSchema])
def list_customers(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Customer]:
    return list(session.scalars(select(Customer).order_by(Customer.id).limit(limit).offset(offset)))


@router.post("/customers", response_model=CustomerSchema, status_code=status.HTTP_201_CREATED)
def create_customer(body: CustomerSchema, session: SessionDep) -> Customer:
    row = Customer(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing customer") from exc
    session.refresh(row)
    return row


@router.get("/addresses", response_model=list[AddressSchema])
def list_addresses(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    customer_id: int | None = None,
) -> list[Address]:
    query = select(Address).order_by(Address.id).limit(limit).offset(offset)
    if customer_id is not None:
        query = query.where(Address.customer_id == customer_id)
    return list(session.scalars(query))


@router.post("/addresses", response_model=AddressSchema, status_code=status.HTTP_201_CREATED)
def create_address(body: AddressSchema, session: SessionDep) -> Address:
    row = Address(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing address") from exc
    session.refresh(row)
    return row


@router.get("/wishlists", response_model=list[WishlistSchema])
def list_wishlists(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    customer_id: int | None = None,
) -> list[Wishlist]:
    query = select(Wishlist).order_by(Wishlist.id).limit(limit).offset(offset)
    if customer_id is not None:
        query = query.where(Wishlist.customer_id == customer_id)
    return list(session.scalars(query))


@router.post("/wishlists", response_model=WishlistSchema, status_code=status.HTTP_201_CREATED)
def create_wishlist(body: WishlistSchema, session: SessionDep) -> Wishlist:
    row = Wishlist(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing wishlist") from exc
    session.refresh(row)
    return row


@router.get("/wishlist-items", response_model=list[WishlistItemSchema])
def list_wishlist_items(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    wishlist_id: int | None = None,
) -> list[WishlistItem]:
    query = select(WishlistItem).order_by(WishlistItem.id).limit(limit).offset(offset)
    if wishlist_id is not None:
        query = query.where(WishlistItem.wishlist_id == wishlist_id)
    return list(session.scalars(query))


@router.post("/wishlist-items", response_model=WishlistItemSchema, status_code=status.HTTP_201_CREATED)
def create_wishlist_item(body: WishlistItemSchema, session: SessionDep) -> WishlistItem:
    row = WishlistItem(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing wishlist item") from exc
    session.refresh(row)
    return row


@router.get("/carts", response_model=list[CartSchema])
def list_carts(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    customer_id: int | None = None,
) -> list[Cart]:
    query = select(Cart).order_by(Cart.id).limit(limit).offset(offset)
    if customer_id is not None:
        query = query.where(Cart.customer_id == customer_id)
    return list(session.scalars(query))


@router.post("/carts", response_model=CartSchema, status_code=status.HTTP_201_CREATED)
def create_cart(body: CartSchema, session: SessionDep) -> Cart:
    row = Cart(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing cart") from exc
    session.refresh(row)
    return row


@router.get("/cart-items", response_model=list[CartItemSchema])
def list_cart_items(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    cart_id: int | None = None,
) -> list[CartItem]:
    query = select(CartItem).order_by(CartItem.id).limit(limit).offset(offset)
    if cart_id is not None:
        query = query.where(CartItem.cart_id == cart_id)
    return list(session.scalars(query))


@router.post("/cart-items", response_model=CartItemSchema, status_code=status.HTTP_201_CREATED)
def create_cart_item(body: CartItemSchema, session: SessionDep) -> CartItem:
    row = CartItem(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing cart item") from exc
    session.refresh(row)
    return row
