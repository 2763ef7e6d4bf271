"""Request and response bodies of the customers domain (pydantic)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CustomerSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    email: str = Field(..., max_length=254)
    first_name: str = Field(..., max_length=80)
    last_name: str = Field(..., max_length=80)
    phone: str | None = Field(None, max_length=30)
    created_at: dt.datetime | None = None
    vip: bool = False

    @field_validator("email")
    @classmethod
    def _email_has_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("not an e-mail address")
        return value.lower()


class AddressSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    customer_id: int = Field(..., gt=0)
    line1: str = Field(..., max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(..., max_length=100)
    postcode: str = Field(..., max_length=20)
    country: str = Field(..., max_length=2)


class WishlistSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    customer_id: int = Field(..., gt=0)
    name: str = Field(..., max_length=100)
    public: bool = False


class WishlistItemSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    wishlist_id: int = Field(..., gt=0)
    product_id: int = Field(..., gt=0)
    added_at: dt.datetime | None = None


class CartSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    customer_id: int | None = Field(None, gt=0)
    session_key: str = Field(..., max_length=64)
    updated_at: dt.datetime | None = None


class CartItemSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    cart_id: int = Field(..., gt=0)
    variant_id: int = Field(..., gt=0)
    quantity: int = Field(..., gt=0)
