"""Request and response bodies of the catalog domain (pydantic)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class BrandSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    name: str = Field(..., max_length=120)
    slug: str = Field(..., max_length=140, min_length=1)
    website: str | None = Field(None, max_length=255)
    founded: int | None = Field(None, ge=0)


class CategorySchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    name: str = Field(..., max_length=120)
    slug: str = Field(..., max_length=140, min_length=1)
    parent_id: int | None = Field(None, gt=0)
    position: int = Field(..., ge=0)


class ProductSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    sku: str = Field(..., max_length=40, min_length=1)
    name: str = Field(..., max_length=200)
    description: str
    price: Decimal = Field(..., max_digits=12, decimal_places=2)
    brand_id: int = Field(..., gt=0)
    category_id: int = Field(..., gt=0)
    active: bool = False


class ProductVariantSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    product_id: int = Field(..., gt=0)
    sku: str = Field(..., max_length=40, min_length=1)
    size: str | None = Field(None, max_length=20)
    colour: str | None = Field(None, max_length=30)
    price_delta: Decimal = Field(..., max_digits=12, decimal_places=2)


class TagSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    label: str = Field(..., max_length=60)
    colour: str = Field(..., max_length=7)


class ProductTagSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    product_id: int = Field(..., gt=0)
    tag_id: int = Field(..., gt=0)


class ProductImageSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    product_id: int = Field(..., gt=0)
    url: str = Field(..., max_length=500)
    alt: str = Field(..., max_length=200)
    position: int = Field(..., ge=0)


class ReviewSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    product_id: int = Field(..., gt=0)
    customer_id: int = Field(..., gt=0)
    rating: int = Field(..., ge=1, le=5)
    title: str = Field(..., max_length=120)
    body: str
    created_at: dt.datetime | None = None
