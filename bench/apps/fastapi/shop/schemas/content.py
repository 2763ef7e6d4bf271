"""Request and response bodies of the content domain (pydantic)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..models.content import NotificationKind


class PageSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    slug: str = Field(..., max_length=140, min_length=1)
    title: str = Field(..., max_length=200)
    body: str
    published: bool = False


class BlogPostSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    slug: str = Field(..., max_length=140, min_length=1)
    title: str = Field(..., max_length=200)
    body: str
    author_id: int = Field(..., gt=0)
    published_at: dt.datetime | None = None


class CommentSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    post_id: int = Field(..., gt=0)
    customer_id: int | None = Field(None, gt=0)
    body: str
    created_at: dt.datetime | None = None


class SubscriberSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    email: str = Field(..., max_length=254)
    confirmed: bool = False
    subscribed_at: dt.datetime | None = None

    @field_validator("email")
    @classmethod
    def _email_has_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("not an e-mail address")
        return value.lower()


class NotificationSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    customer_id: int = Field(..., gt=0)
    kind: NotificationKind = NotificationKind.ORDER
    message: str = Field(..., max_length=500)
    read: bool = False


class AuditLogSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    actor: str = Field(..., max_length=160)
    action: str = Field(..., max_length=60)
    target: str = Field(..., max_length=200)
    at: dt.datetime | None = None
