"""The application object: routers, the schema at start-up, health and version routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from . import models  # noqa: F401 - registers every table on Base.metadata
from .db import Base, engine
from .routers import ROUTERS
from .settings import settings
from .startup import record_start
from .version import VERSION


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    Base.metadata.create_all(engine)
    yield
    engine.dispose()


app = FastAPI(title=settings.title, version=VERSION, lifespan=lifespan)
app.add_middleware(GZipMiddleware, minimum_size=1024)
for router in ROUTERS:
    app.include_router(router, prefix="/api")


@app.get("/health")
def health() -> dict[str, str]:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok"}


@app.get("/version", response_class=PlainTextResponse)
def version() -> str:
    return VERSION


record_start()
