"""Generate a FastAPI + pydantic + SQLAlchemy project of any size, laid out as real ones.

Shared by the scale benchmark (bench/scale.py) and the warm differential test
(tests/integration/test_warm_project.py); standard library only, so either can import it by
path. ``generate(root, models)`` writes ``root/shop/``:

* ``models/m_K.py``: 10 SQLAlchemy declarative models each (``M{K}_{J}``, table ``t{K}_{J}``);
* ``schemas/s_K.py``: a pydantic schema per model (``S{K}_{J}``);
* ``routers/r_K.py``: an ``APIRouter`` (prefix ``/rK``) with ``GET /rK/marker`` (plain text,
  the handler body the benchmark edits) and per model ``GET /rK/mJ`` (the model's table and
  columns, the schema's JSON schema, the settings, a constant of the handler) and
  ``GET /rK/mJ/sample`` (a schema instance through ``response_model``);
* ``settings.py`` (read by ``describe.py`` and ``main.py``), ``db.py`` (the declarative base;
  no database server, no engine at import), ``main.py`` (``app = FastAPI()``, one
  ``include_router`` per router, ``GET /`` listing every route).

Every response is deterministic and depends on what its endpoint is made of, so any edit of
a handler, model, schema, setting or route shows in some response; ``GET /`` also lists the
tables in the order the model modules were imported (a process that imported the modules in
another order than a cold start would, answers differently). The edit helpers below
rewrite files in place as an editor saves, each write longer than the last (the bytecode
cache keys on mtime in seconds and size: a same-size rewrite within the second would be
hidden by a stale ``.pyc``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PER_MODULE = 10


@dataclass(frozen=True)
class Project:
    """A generated project: ``root`` goes on sys.path (or is the server's cwd)."""

    root: Path
    models: int

    @property
    def modules(self) -> int:
        return self.models // PER_MODULE

    @property
    def package(self) -> Path:
        return self.root / "shop"

    def router(self, name: str) -> Path:
        return self.package / "routers" / f"{name}.py"

    def model(self, module: int) -> Path:
        return self.package / "models" / f"m_{module}.py"

    def schema(self, module: int) -> Path:
        return self.package / "schemas" / f"s_{module}.py"

    @property
    def main(self) -> Path:
        return self.package / "main.py"

    @property
    def settings(self) -> Path:
        return self.package / "settings.py"

    @property
    def middle(self) -> int:
        """The router module in the middle of the project (the benchmark's edit)."""
        return self.modules // 2


def _model_module(k: int) -> str:
    lines = [
        f'"""SQLAlchemy models of domain {k}."""',
        "",
        "from __future__ import annotations",
        "",
        "import datetime as dt",
        "from decimal import Decimal",
        "",
        "from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, Numeric, String, Text, func",
        "from sqlalchemy.orm import Mapped, mapped_column",
        "",
        "from ..db import Base",
    ]
    for j in range(PER_MODULE):
        lines += [
            "", "",
            f"class M{k}_{j}(Base):",
            f'    __tablename__ = "t{k}_{j}"',
            "",
            "    id: Mapped[int] = mapped_column(Integer, primary_key=True)",
            f"    name: Mapped[str] = mapped_column(String({40 + j}))",
            "    code: Mapped[str] = mapped_column(String(20), unique=True, index=True)",
            "    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))",
            "    count: Mapped[int] = mapped_column(Integer, default=0)",
            "    active: Mapped[bool] = mapped_column(Boolean, default=True)",
            "    note: Mapped[str | None] = mapped_column(Text, nullable=True)",
            "    created: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now())",
        ]
        if j:
            lines.append(f'    parent_id: Mapped[int | None] = mapped_column(ForeignKey("t{k}_0.id"), nullable=True)')
        lines += ["", "    def __repr__(self) -> str:", f'        return f"<M{k}_{j} {{self.id}}>"']
    return "\n".join(lines) + "\n"


def _schema_module(k: int) -> str:
    lines = [
        f'"""Request and response bodies of domain {k} (pydantic)."""',
        "",
        "from __future__ import annotations",
        "",
        "import datetime as dt",
        "from decimal import Decimal",
        "",
        "from pydantic import BaseModel, ConfigDict, Field",
    ]
    for j in range(PER_MODULE):
        lines += [
            "", "",
            f"class S{k}_{j}(BaseModel):",
            "    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)",
            "",
            "    id: int | None = None",
            f"    name: str = Field(..., max_length={40 + j})",
            "    code: str = Field(..., min_length=1, max_length=20)",
            "    amount: Decimal = Field(..., max_digits=12, decimal_places=2)",
            "    count: int = Field(0, ge=0)",
            "    active: bool = True",
            "    note: str | None = None",
            "    created: dt.datetime | None = None",
        ]
        if j:
            lines.append("    parent_id: int | None = Field(None, gt=0)")
    return "\n".join(lines) + "\n"


def _route_block(k: int, j: int) -> list[str]:
    return [
        f"# --- m{j} ---",
        f'@router.get("/m{j}")',
        f"def describe_m{j}() -> dict[str, object]:",
        f'    return describe(M{k}_{j}, S{k}_{j}, "r{k}.m{j}", note="n{k}.{j}")',
        "",
        "",
        f'@router.get("/m{j}/sample", response_model=S{k}_{j})',
        f"def sample_m{j}() -> S{k}_{j}:",
        f'    return S{k}_{j}(name=" sample {k}.{j} ", code="c{k}{j}", amount=Decimal("{k}.{j:02d}"), count={j})',
        f"# --- end m{j} ---",
    ]


def _router_module(k: int) -> str:
    names = ", ".join(f"M{k}_{j}" for j in range(PER_MODULE))
    schemas = ", ".join(f"S{k}_{j}" for j in range(PER_MODULE))
    lines = [
        f'"""Routes of domain {k}: a description and a sample per model."""',
        "",
        "from __future__ import annotations",
        "",
        "from decimal import Decimal",
        "",
        "from fastapi import APIRouter",
        "from fastapi.responses import PlainTextResponse",
        "",
        "from ..describe import describe",
        f"from ..models.m_{k} import {names}  # noqa: F401",
        f"from ..schemas.s_{k} import {schemas}",
        "",
        f'router = APIRouter(prefix="/r{k}", tags=["domain {k}"])',
        "",
        "",
        '@router.get("/marker", response_class=PlainTextResponse)',
        "def marker() -> str:",
        f'    return "r{k} v0"  # marker',
        "",
    ]
    for j in range(PER_MODULE):
        lines += ["", *_route_block(k, j), ""]
    return "\n".join(lines)


_SETTINGS = '''"""Settings, read once at import (main.py and describe.py use them)."""

TITLE = "Shop API"
API_VERSION = "1.0"
PAGE_SIZE = 50
CURRENCY = "EUR"
'''

_DB = '''"""The declarative base every model registers on (no engine: no database server)."""

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
'''

_DESCRIBE = '''"""What a description endpoint answers: the model's table, the schema, the settings."""

from __future__ import annotations

from typing import Any

from . import settings


def describe(model: Any, schema: Any, label: str, note: str) -> dict[str, object]:
    table = model.__table__
    return {
        "label": label,
        "note": note,
        "table": table.name,
        "columns": [[c.name, str(c.type), bool(c.nullable), bool(c.primary_key), bool(c.unique)]
                    for c in table.columns],
        "foreign_keys": sorted(fk.target_fullname for fk in table.foreign_keys),
        "indexes": sorted(index.name or "" for index in table.indexes),
        "schema": schema.model_json_schema(),
        "page_size": settings.PAGE_SIZE,
        "currency": settings.CURRENCY,
    }
'''


def _main_module(routers: list[str]) -> str:
    lines = [
        '"""The application: every router included, settings applied, a route listing."""',
        "",
        "from __future__ import annotations",
        "",
        "from fastapi import FastAPI",
        "",
        "from . import settings",
        "from .db import Base",
    ]
    lines += [f"from .routers import {name}" for name in routers]
    lines += ["", "app = FastAPI(title=settings.TITLE, version=settings.API_VERSION)"]
    lines += [f"app.include_router({name}.router)" for name in routers]
    lines += [
        "", "",
        '@app.get("/")',
        "def index() -> dict[str, object]:",
        "    return {",
        '        "title": settings.TITLE,',
        '        "currency": settings.CURRENCY,',
        '        "tables": list(Base.metadata.tables),  # in the order the models were imported',
        '        "paths": sorted(app.openapi()["paths"]),',
        "    }",
    ]
    return "\n".join(lines) + "\n"


def generate(root: Path, models: int) -> Project:
    """Write the project under ``root`` (``models``: a multiple of 10) and return it."""
    if models <= 0 or models % PER_MODULE:
        raise ValueError(f"models must be a positive multiple of {PER_MODULE}, not {models}")
    project = Project(Path(root), models)
    package = project.package
    for sub in ("models", "schemas", "routers"):
        (package / sub).mkdir(parents=True, exist_ok=True)
        (package / sub / "__init__.py").write_text(f'"""The project\'s {sub}."""\n')
    (package / "__init__.py").write_text('"""A generated shop."""\n')
    (package / "settings.py").write_text(_SETTINGS)
    (package / "db.py").write_text(_DB)
    (package / "describe.py").write_text(_DESCRIBE)
    for k in range(project.modules):
        project.model(k).write_text(_model_module(k))
        project.schema(k).write_text(_schema_module(k))
        project.router(f"r_{k}").write_text(_router_module(k))
    project.main.write_text(_main_module([f"r_{k}" for k in range(project.modules)]))
    return project


# --- what it serves -------------------------------------------------------------------------

_PREFIX = re.compile(r'APIRouter\(prefix="([^"]*)"')
_ROUTE = re.compile(r'^@(?:router|app)\.get\("([^"]*)"', re.MULTILINE)
_INCLUDED = re.compile(r"^from \.routers import (\w+)$", re.MULTILINE)


def routers(project: Project) -> list[str]:
    """The router modules main.py includes, in its order."""
    return _INCLUDED.findall(project.main.read_text())


def endpoints(project: Project) -> list[str]:
    """Every GET path the project serves as its files stand now (FastAPI's own pages too)."""
    paths = ["/openapi.json", "/docs", "/redoc", *_ROUTE.findall(project.main.read_text())]
    for name in routers(project):
        text = project.router(name).read_text()
        match = _PREFIX.search(text)
        prefix = match.group(1) if match else ""
        paths += [prefix + path for path in _ROUTE.findall(text)]
    return paths


def marker_path(module: int) -> str:
    return f"/r{module}/marker"


# --- edits, as an editor saves ----------------------------------------------------------------

_serial = [0]


def _save(path: Path, text: str) -> None:
    """Write ``text`` plus a trailing comment longer than any before (see the module docstring)."""
    _serial[0] += 1
    text = re.sub(r"\n# edit \.*\n$", "\n", text)
    path.write_text(f"{text}# edit {'.' * _serial[0]}\n")


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise ValueError(f"{path.name}: expected {old!r} once, found it {text.count(old)} times")
    _save(path, text.replace(old, new))


def edit_handler(project: Project, module: int, version: str, router: str | None = None) -> str:
    """Change the body of ``/r{module}/marker``; returns what it serves now."""
    path = project.router(router or f"r_{module}")
    text = re.sub(r'return "r\d+ [^"]*"  # marker', f'return "r{module} {version}"  # marker', path.read_text())
    _save(path, text)
    return f"r{module} {version}"


def import_model(project: Project, module: int, other: int, version: str) -> str:
    """Router ``r_{module}`` imports a model of domain ``other`` too (a later one: a cold start
    now imports its module before the routers in between), and its marker answers ``version``."""
    path = project.router(f"r_{module}")
    text = re.sub(r'return "r\d+ [^"]*"  # marker', f'return "r{module} {version}"  # marker', path.read_text())
    anchor = f"from ..schemas.s_{module} import"
    if text.count(anchor) != 1:
        raise ValueError(f"{path.name}: expected {anchor!r} once")
    _save(path, text.replace(anchor, f"from ..models.m_{other} import M{other}_0  # noqa: F401\n{anchor}"))
    return f"r{module} {version}"


def add_column(project: Project, module: int, model: int, column: str) -> None:
    """A new nullable column on ``M{module}_{model}``: shows in ``/r{module}/m{model}``."""
    anchor = f'    __tablename__ = "t{module}_{model}"\n'
    _replace_once(project.model(module), anchor,
                  f"{anchor}\n    {column}: Mapped[str | None] = mapped_column(String(30), nullable=True)\n")


def add_field(project: Project, module: int, model: int, field: str) -> None:
    """A new optional field on ``S{module}_{model}``: shows in its description and sample."""
    anchor = f"class S{module}_{model}(BaseModel):\n    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)\n"
    _replace_once(project.schema(module), anchor, f'{anchor}    {field}: str = "{field} default"\n')


def edit_setting(project: Project, name: str, value: object) -> None:
    text = project.settings.read_text()
    new, count = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"settings.py has no {name}")
    _save(project.settings, new)


def add_route(project: Project, module: int, path: str, value: str, router: str | None = None) -> None:
    """A new ``GET /r{module}{path}`` answering ``{"value": value}``."""
    target = project.router(router or f"r_{module}")
    name = re.sub(r"\W", "_", path.strip("/")) or "root"
    block = f'\n\n@router.get("{path}")\ndef added_{name}() -> dict[str, str]:\n    return {{"value": {value!r}}}\n'
    _save(target, target.read_text().rstrip("\n") + "\n" + block)


def remove_route(project: Project, module: int, model: int, router: str | None = None) -> None:
    """Remove ``/r{module}/m{model}`` and its sample."""
    target = project.router(router or f"r_{module}")
    text = target.read_text()
    new, count = re.subn(rf"# --- m{model} ---\n.*?# --- end m{model} ---\n", "", text, flags=re.DOTALL)
    if count != 1:
        raise ValueError(f"{target.name} has no m{model} block")
    _save(target, new)


def rename_router(project: Project, old: str, new: str) -> None:
    """Rename ``routers/{old}.py`` to ``routers/{new}.py`` and update main.py (prefix unchanged).

    In an order where every state in between imports: the new file, main.py, the old file gone
    (a reloader may start a generation between any two steps).
    """
    _save(project.router(new), project.router(old).read_text())
    _save(project.main, re.sub(rf"\b{re.escape(old)}\b", new, project.main.read_text()))
    project.router(old).unlink()


def break_syntax(project: Project, router: str) -> str:
    """Save a syntax error into a router module; returns the good text for :func:`restore`."""
    path = project.router(router)
    good = path.read_text()
    _save(path, good.replace("router = APIRouter(", "router = APIRouter((", 1))
    return good


def restore(project: Project, router: str, good: str) -> None:
    _save(project.router(router), good)
