"""Configuration from the environment, read once at import."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    database_url: str
    page_size: int = 50
    title: str = "Shop API"


def _database_url() -> str:
    if url := os.environ.get("SHOP_DATABASE_URL"):
        return url
    # outside the source tree, so that SQLite's journal never looks like an edit to a reloader
    state = Path(os.environ.get("BENCH_STATE_DIR") or tempfile.gettempdir())
    return f"sqlite:///{state / 'shop.sqlite3'}"


settings = Settings(database_url=_database_url())
