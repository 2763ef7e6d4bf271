"""Routes of the content domain: a list and a create route per table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import SessionDep
from ..models.content import AuditLog, BlogPost, Comment, Notification, Page, Subscriber
from ..schemas.content import (
    AuditLogSchema,
    BlogPostSchema,
    CommentSchema,
    NotificationSchema,
    PageSchema,
    SubscriberSchema,
)

router = APIRouter(tags=["content"])


@router.get("/pages", response_model=list[PageSchema])
def list_pages(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Page]:
    return list(session.scalars(select(Page).order_by(Page.id).limit(limit).offset(offset)))


@router.post("/pages", response_model=PageSchema, status_code=status.HTTP_201_CREATED)
def create_page(body: PageSchema, session: SessionDep) -> Page:
    row = Page(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing page") from exc
    session.refresh(row)
    return row


@router.get("/blog-posts", response_model=list[BlogPostSchema])
def list_blog_posts(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    author_id: int | None = None,
) -> list[BlogPost]:
    query = select(BlogPost).order_by(BlogPost.id).limit(limit).offset(offset)
    if author_id is not None:
        query = query.where(BlogPost.author_id == author_id)
    return list(session.scalars(query))


@router.post("/blog-posts", response_model=BlogPostSchema, status_code=status.HTTP_201_CREATED)
def create_blog_post(body: BlogPostSchema, session: SessionDep) -> BlogPost:
    row = BlogPost(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing blog post") from exc
    session.refresh(row)
    return row


@router.get("/comments", response_model=list[CommentSchema])
def list_comments(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    post_id: int | None = None,
) -> list[Comment]:
    query = select(Comment).order_by(Comment.id).limit(limit).offset(offset)
    if post_id is not None:
        query = query.where(Comment.post_id == post_id)
    return list(session.scalars(query))


@router.post("/comments", response_model=CommentSchema, status_code=status.HTTP_201_CREATED)
def create_comment(body: CommentSchema, session: SessionDep) -> Comment:
    row = Comment(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing comment") from exc
    session.refresh(row)
    return row


@router.get("/subscribers", response_model=list[SubscriberSchema])
def list_subscribers(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Subscriber]:
    return list(session.scalars(select(Subscriber).order_by(Subscriber.id).limit(limit).offset(offset)))


@router.post("/subscribers", response_model=SubscriberSchema, status_code=status.HTTP_201_CREATED)
def create_subscriber(body: SubscriberSchema, session: SessionDep) -> Subscriber:
    row = Subscriber(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing subscriber") from exc
    session.refresh(row)
    return row


@router.get("/notifications", response_model=list[NotificationSchema])
def list_notifications(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    customer_id: int | None = None,
) -> list[Notification]:
    query = select(Notification).order_by(Notification.id).limit(limit).offset(offset)
    if customer_id is not None:
        query = query.where(Notification.customer_id == customer_id)
    return list(session.scalars(query))


@router.post("/notifications", response_model=NotificationSchema, status_code=status.HTTP_201_CREATED)
def create_notification(body: NotificationSchema, session: SessionDep) -> Notification:
    row = Notification(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing notification") from exc
    session.refresh(row)
    return row


@router.get("/audit-logs", response_model=list[AuditLogSchema])
def list_audit_logs(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).order_by(AuditLog.id).limit(limit).offset(offset)))


@router.post("/audit-logs", response_model=AuditLogSchema, status_code=status.HTTP_201_CREATED)
def create_audit_log(body: AuditLogSchema, session: SessionDep) -> AuditLog:
    row = AuditLog(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing audit log") from exc
    session.refresh(row)
    return row
