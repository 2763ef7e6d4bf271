"""The project checkpoint's decisions (reloadkit/proc/warmplan.py: ProjectImports), without
processes: what it holds for a hot set, and whether a change leaves it usable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reloadkit.proc.importorder import ImportFacts
from reloadkit.proc.warmplan import HOT_LIMIT, ProjectImports


def _shop(root: str) -> ProjectImports:
    """uvicorn imports shop.main, which imports each router, which imports its model and
    schema; r1 also uses m0, already imported (by r0) when r1 ran."""
    imports = ProjectImports()
    pairs: list[tuple[str, str]] = [
        ("shop", "__main__"),
        ("shop.main", "__main__"),
        ("shop.routers", "shop.main"),
        ("shop.routers.r0", "shop.main"),
        ("shop.models", "shop.routers.r0"),
        ("shop.models.m0", "shop.routers.r0"),
        ("shop.routers.r1", "shop.main"),
        ("shop.models.m1", "shop.routers.r1"),
        ("shop.urls", ""),
    ]
    for name, importer in pairs:
        path = f"{root}/{name.replace('.', '/')}.py"
        assert imports.learn(name, path, importer)
    return imports


AFTER_R1 = {"shop.routers.r1", "shop.models.m1", "shop.urls"}


def test_what_comes_from_the_first_hot_module_on_and_what_imports_it_stay_out() -> None:
    """The checkpoint holds a prefix of the first generation's import order (minus the hot
    modules' importers), so no module runs before one that ran before it in a cold start."""
    imports = _shop("/p")
    assert imports.skipped() == set()
    assert imports.heat(["shop.routers.r1"])
    assert imports.skipped() == AFTER_R1 | {"shop.main"}
    assert imports.heat(["shop.models.m0"])
    assert imports.skipped() == AFTER_R1 | {"shop.main", "shop.models.m0", "shop.routers.r0"}
    imports = _shop("/p")
    imports.heat(["shop.models.m1"])  # imported by r1, in turn imported by main
    assert imports.skipped() == {"shop.models.m1", "shop.urls", "shop.routers.r1", "shop.main"}


def test_a_module_that_failed_stays_out_with_its_importers_until_the_hot_set_changes() -> None:
    imports = _shop("/p")
    imports.failed.add("shop.routers.r1")  # it imported m0, hot, which r0 had imported first
    assert imports.skipped() == AFTER_R1 | {"shop.main"}
    assert not imports.heat([])
    assert imports.failed == {"shop.routers.r1"}
    assert imports.heat(["shop.models.m1"])
    assert imports.failed == set()


def test_the_hot_set_keeps_the_latest_edits() -> None:
    imports = ProjectImports()
    names = [f"app.m{number}" for number in range(HOT_LIMIT + 2)]
    for name in names:
        imports.learn(name, f"/p/{name}.py", "")
        imports.heat([name])
    assert imports.hot == names[-HOT_LIMIT:]
    assert not imports.heat([names[-3]])  # the same set, in another order
    assert imports.hot[-1] == names[-3]


def test_a_change_to_a_module_it_holds_or_to_any_other_file_makes_it_unusable() -> None:
    imports = _shop("/p")
    held = set(imports.files) - {"shop.routers.r1", "shop.main"}
    assert imports.unusable(held, ["/p/shop/routers/r1.py", "/p/shop/main.py"]) is None
    assert imports.unusable(held, ["/p/shop/models/m1.py"]) == "it holds shop.models.m1, which changed"
    assert imports.unusable(held, ["/p/settings.toml"]) == "settings.toml changed, which it may have read"
    assert imports.unusable(held, ["/p/shop/routers/r2.py"]) is not None  # a new module: a package may list it


def test_a_changed_path_finds_its_module_through_links_and_after_more_modules_were_learned(tmp_path: Path) -> None:
    """names_of resolves each module's file once (a reload must not resolve the whole
    project's again): modules learned after a lookup are found, and so is a file named
    through a link, or its module's file through one."""
    real = tmp_path / "real"
    (real / "shop").mkdir(parents=True)
    for name in ("main", "views"):
        (real / "shop" / f"{name}.py").write_text("")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    imports = ProjectImports()
    assert imports.learn("shop.main", str(tmp_path / "link" / "shop" / "main.py"), "__main__")
    assert imports.names_of([str(real / "shop" / "main.py")]) == (["shop.main"], [])
    views = str(tmp_path / "link" / "shop" / "views.py")
    assert imports.names_of([views]) == ([], [views])
    assert imports.learn("shop.views", str(real / "shop" / "views.py"), "shop.main")
    assert imports.names_of([views, str(real / "shop" / "main.py")]) == (["shop.views", "shop.main"], [])


def test_the_command_itself_is_never_a_project_module() -> None:
    imports = ProjectImports()
    assert not imports.learn("__main__", "/p/serve.py", "")
    assert imports.learn("shop", "/p/shop/__init__.py", "__main__")
    assert not imports.learn("shop", "/p/shop/__init__.py", "__main__")


def test_the_directories_the_project_was_imported_from() -> None:
    imports = _shop("/p")
    imports.learn("tools", "/elsewhere/tools/__init__.py", "__main__")
    imports.learn("@django.setup/shop.settings", "/venv/site-packages/django/__init__.py", "shop.main")
    assert imports.roots(["shop", "shop.routers.r0", "tools", "@django.setup/shop.settings", "unknown"]) == [
        "/p",
        "/elsewhere",
    ]


def _imports(*dotted: str, writes: tuple[str, ...] = ()) -> ImportFacts:
    return ImportFacts(reads=frozenset(dotted), writes=frozenset(writes), imports=dotted)


def _facts(table: dict[str, ImportFacts]) -> Callable[[str], ImportFacts]:
    return lambda name: table.get(name, ImportFacts())


FACTS = {  # main imports the routers, each router its model; each model registers on shop.models
    "shop.main": _imports("shop.routers.r0", "shop.routers.r1"),
    "shop.routers.r0": _imports("shop.models.m0.Thing"),
    "shop.routers.r1": _imports("shop.models.m1.Item"),
    "shop.models.m0": ImportFacts(writes=frozenset({"shop.models.Base"})),
    "shop.models.m1": ImportFacts(writes=frozenset({"shop.models.Base"})),
}


def test_with_the_imports_facts_a_hot_module_is_skipped_over_where_the_order_is_invisible() -> None:
    imports = _shop("/p")
    imports.heat(["shop.routers.r0"])  # reads m0 only: m1 registering later changes nothing it sees
    assert imports.plan(_facts(FACTS)) == ({"shop.routers.r0", "shop.main"}, None)
    imports = _shop("/p")
    imports.heat(["shop.models.m0"])  # registering after m1 would change the order of the tables
    skipped, why = imports.plan(_facts(FACTS))
    assert skipped == AFTER_R1 | {"shop.main", "shop.models.m0", "shop.routers.r0"}
    assert why == "shop.models.m0 writes into shop.models, which a later import uses (shop.models.m1)"
    imports = _shop("/p")
    imports.heat(["shop.routers.r0"])
    skipped, why = imports.plan(_facts({**FACTS, "shop.routers.r0": ImportFacts(bound="does not compile")}))
    assert skipped == AFTER_R1 | {"shop.main", "shop.routers.r0", "shop.models", "shop.models.m0"}
    assert why == "shop.routers.r0 does not compile"


def test_what_a_module_imports_during_its_own_import_does_not_count_against_it() -> None:
    """main imports everything after it in a cold start too: its own place is kept."""
    imports = _shop("/p")
    imports.heat(["shop.main"])
    facts = _facts({**FACTS, "shop.main": _imports("shop.routers.r0", "shop.routers.r1", "shop.models.Base")})
    assert imports.plan(facts) == ({"shop.main"}, None)
    urls = ImportFacts(writes=frozenset({"shop.models.Base.registry"}))  # not imported by main
    assert imports.plan(lambda name: urls if name == "shop.urls" else facts(name))[1] == (
        "shop.main uses shop.models, which a later import writes into (shop.urls)")


def test_an_edit_that_makes_a_skipped_over_module_conflict_makes_the_checkpoint_unusable() -> None:
    imports = _shop("/p")
    imports.heat(["shop.routers.r0"])
    held = set(imports.files) - imports.skipped(_facts(FACTS))
    assert imports.reordered(held, ["shop.routers.r0", "shop.main"], _facts(FACTS)) is None
    now = {**FACTS, "shop.routers.r0": _imports("shop.models.m0.Thing", writes=("shop.models.Base",))}
    assert imports.reordered(held, ["shop.routers.r0"], _facts(now)) == (
        "shop.routers.r0 writes into shop.models, which a later import uses (shop.models.m1)")


def test_an_edit_that_changes_what_a_skipped_over_module_imports_first_makes_it_unusable() -> None:
    """A cold start of the new source would import its modules at other places."""
    imports = _shop("/p")
    imports.heat(["shop.routers.r0", "shop.main"])
    held = set(imports.files) - imports.skipped(_facts(FACTS))
    cases = {
        ("shop.routers.r0", ()): "shop.routers.r0 no longer imports shop.models, which it imported first",
        ("shop.routers.r0", ("shop.models.m0.Thing", "shop.models.m1.Item")):
            "shop.routers.r0 now imports shop.models.m1, which a cold start imported after it",
        ("shop.main", ("shop.routers.r1", "shop.routers.r0")): None,  # r0 is the generation's
    }
    for (name, dotted), why in cases.items():
        assert imports.reordered(held, [name], _facts({**FACTS, name: _imports(*dotted)})) == why
    imports = _shop("/p")
    imports.heat(["shop.main"])
    held = set(imports.files) - imports.skipped(_facts(FACTS))
    swapped = _facts({**FACTS, "shop.main": _imports("shop.routers.r1", "shop.routers.r0")})
    assert imports.reordered(held, ["shop.main"], swapped) == (
        "shop.main imports shop.routers, shop.routers.r0, shop.routers.r1 in another order now")
