"""Routes of the catalog domain: a list and a create route per table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import SessionDep
from ..models.catalog import Brand, Category, Product, ProductImage, ProductTag, ProductVariant, Review, Tag
from ..schemas.catalog import (
    BrandSchema,
    CategorySchema,
    ProductImageSchema,
    ProductSchema,
    ProductTagSchema,
    ProductVariantSchema,
    ReviewSchema,
    TagSchema,
)

router = APIRouter(tags=["catalog"])


@router.get("/brands", response_model=list[BrandSchema])
def list_brands(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Brand]:
    return list(session.scalars(select(Brand).order_by(Brand.id).limit(limit).offset(offset)))


@router.post("/brands", response_model=BrandSchema, status_code=status.HTTP_201_CREATED)
def create_brand(body: BrandSchema, session: SessionDep) -> Brand:
    row = Brand(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing brand") from exc
    session.refresh(row)
    return row


@router.get("/categories", response_model=list[CategorySchema])
def list_categories(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    parent_id: int | None = None,
) -> list[Category]:
    query = select(Category).order_by(Category.id).limit(limit).offset(offset)
    if parent_id is not None:
        query = query.where(Category.parent_id == parent_id)
    return list(session.scalars(query))


@router.post("/categories", response_model=CategorySchema, status_code=status.HTTP_201_CREATED)
def create_category(body: CategorySchema, session: SessionDep) -> Category:
    row = Category(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing category") from exc
    session.refresh(row)
    return row


@router.get("/products", response_model=list[ProductSchema])
def list_products(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    brand_id: int | None = None,
) -> list[Product]:
    query = select(Product).order_by(Product.id).limit(limit).offset(offset)
    if brand_id is not None:
        query = query.where(Product.brand_id == brand_id)
    return list(session.scalars(query))


@router.post("/products", response_model=ProductSchema, status_code=status.HTTP_201_CREATED)
def create_product(body: ProductSchema, session: SessionDep) -> Product:
    row = Product(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing product") from exc
    session.refresh(row)
    return row


@router.get("/product-variants", response_model=list[ProductVariantSchema])
def list_product_variants(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    product_id: int | None = None,
) -> list[ProductVariant]:
    query = select(ProductVariant).order_by(ProductVariant.id).limit(limit).offset(offset)
    if product_id is not None:
        query = query.where(ProductVariant.product_id == product_id)
    return list(session.scalars(query))


@router.post("/product-variants", response_model=ProductVariantSchema, status_code=status.HTTP_201_CREATED)
def create_product_variant(body: ProductVariantSchema, session: SessionDep) -> ProductVariant:
    row = ProductVariant(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing product variant") from exc
    session.refresh(row)
    return row


@router.get("/tags", response_model=list[TagSchema])
def list_tags(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Tag]:
    return list(session.scalars(select(Tag).order_by(Tag.id).limit(limit).offset(offset)))


@router.post("/tags", response_model=TagSchema, status_code=status.HTTP_201_CREATED)
def create_tag(body: TagSchema, session: SessionDep) -> Tag:
    row = Tag(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing tag") from exc
    session.refresh(row)
    return row


@router.get("/product-tags", response_model=list[ProductTagSchema])
def list_product_tags(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    product_id: int | None = None,
) -> list[ProductTag]:
    query = select(ProductTag).order_by(ProductTag.id).limit(limit).offset(offset)
    if product_id is not None:
        query = query.where(ProductTag.product_id == product_id)
    return list(session.scalars(query))


@router.post("/product-tags", response_model=ProductTagSchema, status_code=status.HTTP_201_CREATED)
def create_product_tag(body: ProductTagSchema, session: SessionDep) -> ProductTag:
    row = ProductTag(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing product tag") from exc
    session.refresh(row)
    return row


@router.get("/product-images", response_model=list[ProductImageSchema])
def list_product_images(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    product_id: int | None = None,
) -> list[ProductImage]:
    query = select(ProductImage).order_by(ProductImage.id).limit(limit).offset(offset)
    if product_id is not None:
        query = query.where(ProductImage.product_id == product_id)
    return list(session.scalars(query))


@router.post("/product-images", response_model=ProductImageSchema, status_code=status.HTTP_201_CREATED)
def create_product_image(body: ProductImageSchema, session: SessionDep) -> ProductImage:
    row = ProductImage(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing product image") from exc
    session.refresh(row)
    return row


@router.get("/reviews", response_model=list[ReviewSchema])
def list_reviews(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    product_id: int | None = None,
) -> list[Review]:
    query = select(Review).order_by(Review.id).limit(limit).offset(offset)
    if product_id is not None:
        query = query.where(Review.product_id == product_id)
    return list(session.scalars(query))


@router.post("/reviews", response_model=ReviewSchema, status_code=status.HTTP_201_CREATED)
def create_review(body: ReviewSchema, session: SessionDep) -> Review:
    row = Review(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing review") from exc
    session.refresh(row)
    return row
