"""What an import reads from and writes into the project's modules (reloadkit/proc/importorder.py),
from source alone: the facts that let the project checkpoint run a module later than a cold start."""

from __future__ import annotations

import textwrap

from reloadkit.proc.importorder import ImportFacts, conflict, import_facts


def _facts(source: str, name: str = "shop.routers.r1", *, is_package: bool = False) -> ImportFacts:
    return import_facts(textwrap.dedent(source), name, is_package=is_package,
                        project=lambda module: module.split(".")[0] == "shop")


def _owner(dotted: str) -> str | None:
    known = {"shop", "shop.db", "shop.app", "shop.models.m1", "shop.models.m2", "shop.registry"}
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def test_a_router_reads_its_models_and_writes_nothing_of_the_project() -> None:
    facts = _facts("""
        from fastapi import APIRouter
        from ..models.m1 import User
        from ..schemas import s1 as schemas
        router = APIRouter(prefix="/r1")

        @router.get("/users", response_model=schemas.UserOut)
        def users(limit: int = 10) -> list:
            User.query.delete()  # a function body runs later, if ever
            return []
    """)
    assert facts == ImportFacts(reads=frozenset({"shop.models.m1.User", "shop.schemas.s1"}),
                                imports=("shop.models.m1.User", "shop.schemas.s1"))


def test_registering_on_a_project_object_is_a_write() -> None:
    cases = {
        "from shop.db import Base\nclass User(Base):\n    pass\n": "shop.db.Base",
        "from shop.app import app\n@app.route('/')\ndef index():\n    pass\n": "shop.app.app.route",
        "from shop import registry\nregistry.add('x')\n": "shop.registry.add",
        "import shop.registry\nshop.registry.ITEMS['x'] = 1\n": "shop.registry.ITEMS",
        "from shop.registry import ITEMS\nITEMS += ['x']\n": "shop.registry.ITEMS",
        "from shop.db import engine\nwith engine.begin():\n    engine.flag = 1\n": "shop.db.engine.begin",
        "from shop.db import Base\nclass Meta(type):\n    x = Base.metadata.create_all()\n": "shop.db.Base.metadata.create_all",
        "from shop.db import Base\nf = lambda x=Base.configure(): x\n": "shop.db.Base.configure",
    }
    for source, write in cases.items():
        assert write in _facts(source).writes, source


def test_a_name_bound_again_is_no_longer_the_project_one() -> None:
    facts = _facts("from shop.db import Base\nBase = object\nclass User(Base):\n    pass\n")
    assert facts.writes == frozenset()


def test_relative_imports_resolve_from_the_package_and_installed_ones_are_not_read() -> None:
    assert _facts("from . import db\nimport os\nos.environ['X'] = '1'\n", "shop", is_package=True).reads == {"shop.db"}
    assert _facts("from . import m2\n", "shop.models", is_package=True).reads == {"shop.models.m2"}
    assert _facts("from .. import db\n", "shop.models.m1").reads == {"shop.db"}
    assert _facts("import shop.db as d\nd.Base.x = 1\n").writes == {"shop.db.Base.x"}


def test_what_cannot_be_read_keeps_its_place() -> None:
    assert _facts("def broken(:\n").bound == "does not compile"
    assert _facts("from shop.models.m1 import *\n").bound == "star-imports shop.models.m1"


def test_a_conflict_is_a_write_into_a_module_the_other_uses() -> None:
    router = _facts("from shop.models.m1 import User\n")
    model = _facts("from shop.db import Base\nclass Order(Base):\n    pass\n", "shop.models.m2")
    other_model = _facts("from shop.db import Base\nclass Item(Base):\n    pass\n", "shop.models.m1")
    assert conflict(router, model, _owner) is None
    assert conflict(model, router, _owner) is None
    assert conflict(model, other_model, _owner) == "writes into shop.db, which a later import uses"
    reader = _facts("from shop.db import Base\nTABLES = list(Base.metadata.tables)\n")
    assert conflict(reader, model, _owner) == "uses shop.db, which a later import writes into"
    assert conflict(_facts("import os\n"), ImportFacts(bound="does not compile"), _owner) is None
