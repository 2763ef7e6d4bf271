"""Warm reloads of a generated FastAPI + pydantic + SQLAlchemy project serve exactly what a cold
start of the same code serves, edit after edit.

The project (apps/shopgen.py, 40 models: 4 models, schemas and routers modules) runs under
``reloadkit run -v -b 127.0.0.1:0 -- uvicorn --fd 3 shop.main:app`` in the default (warm) mode.
A corpus of edits is applied one after the other: a handler's body, an import of a later
domain's model added to that router (a cold start imports its tables earlier now), a model (a column added),
a schema (a field added), a setting, a route added, a route removed, a router module renamed
(main.py updated), a syntax error and its fix. After each edit, once the new generation
serves it, EVERY endpoint is fetched, then a cold ``uvicorn shop.main:app --port`` of the same
files (no reloadkit) is started and fetched the same way: status and body must be identical.
Every reload is forked warm, from the project checkpoint unless the edit touched a module it
held (each checkpoint forked from the installed-modules parent); none starts cold or fails
warm, but for the syntax error's generation, which reloadkit starts again cold, as
docs/warm.rst says.
``GET /`` lists the tables in the order the models were imported: a warm start that imports
the project's modules in another order than a cold start shows here. The corpus runs twice:
as on Linux (each checkpoint forked from the installed-modules parent), and with clone(2)'s
CLONE_PARENT refused by a seccomp filter (refuse.py), as macOS lacks it: each checkpoint is
then built by a fresh interpreter, in a cold start's order.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support import (
    APPS,
    Reloadkit,
    assert_all_gone,
    free_port,
    http_get,
    reloadkit_env,
    server_env,
    wait_for,
)

sys.path.insert(0, str(APPS))  # apps/shopgen.py, shared with bench/scale.py
import shopgen

pytestmark = [pytest.mark.timeout(240), pytest.mark.matrix]

MODELS = 40
READY = r"warm parent pid \d+ ready"
CHECKPOINT_READY = r"project checkpoint pid \d+ ready"
Responses = dict[str, tuple[int, str]]


def _status(url: str, path: str) -> tuple[int, str] | None:
    try:
        return http_get(url, path, timeout=20)
    except (OSError, http.client.HTTPException):
        return None


def fetch_all(url: str, project: shopgen.Project) -> Responses:
    """Every endpoint of the project as its files stand: (status, body)."""
    responses: Responses = {}
    for path in shopgen.endpoints(project):
        reply = _status(url, path)
        assert reply is not None, f"{path}: no response from {url}"
        responses[path] = reply
    return responses


def cold_responses(project: shopgen.Project) -> Responses:
    """A cold start of the same files, without reloadkit: every endpoint, then stopped by pid."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = reloadkit_env(server_env(project.root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "shop.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=project.root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: proc.poll() is not None or _status(url, "/") is not None, 60, "the cold start to serve")
        assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")
        return fetch_all(url, project)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)


def assert_as_cold(url: str, project: shopgen.Project) -> None:
    warm = fetch_all(url, project)
    cold = cold_responses(project)
    assert sorted(warm) == sorted(cold)
    different = [path for path in cold if warm[path] != cold[path]]
    assert not different, {path: (warm[path][:1], cold[path][:1], warm[path][1][:300], cold[path][1][:300])
                           for path in different[:3]}
    assert all(status == 200 for status, _ in cold.values()), {p: s for p, (s, _) in cold.items() if s != 200}


def _serves(url: str, path: str, check: Callable[[int, str], bool], what: str) -> None:
    def ok() -> bool:
        reply = _status(url, path)
        return reply is not None and check(*reply)

    wait_for(ok, 60, what, interval=0.02)


# The corpus: (name, edit, probe path, what the new generation answers there).
def _corpus(project: shopgen.Project) -> list[tuple[str, Callable[[], None], str, Callable[[int, str], bool]]]:
    def handler() -> None:
        shopgen.edit_handler(project, 1, "v1")

    def rename() -> None:
        shopgen.rename_router(project, "r_2", "domain_two")
        shopgen.edit_handler(project, 2, "renamed", router="domain_two")

    return [
        ("a handler's body", handler, "/r1/marker", lambda s, b: b == "r1 v1"),
        ("an import of a later domain's model", lambda: shopgen.import_model(project, 1, 3, "imports"), "/r1/marker",
         lambda s, b: b == "r1 imports"),
        ("a model's column", lambda: shopgen.add_column(project, 2, 3, "extra_col"), "/r2/m3",
         lambda s, b: '"extra_col"' in b),
        ("a schema's field", lambda: shopgen.add_field(project, 3, 4, "flag_field"), "/r3/m4/sample",
         lambda s, b: '"flag_field"' in b),
        ("a setting", lambda: shopgen.edit_setting(project, "CURRENCY", "USD"), "/", lambda s, b: '"USD"' in b),
        ("a route added", lambda: shopgen.add_route(project, 0, "/added", "new route"), "/r0/added",
         lambda s, b: s == 200 and "new route" in b),
        ("a route removed", lambda: shopgen.remove_route(project, 1, 5), "/r1/m5", lambda s, b: s == 404),
        ("a module renamed", rename, "/r2/marker", lambda s, b: b == "r2 renamed"),
    ]


def _checkpoint_settled(rk: Reloadkit) -> None:
    """After a reload that could not start from the project checkpoint (it held the edited
    module), wait for the checkpoint rebuilt with that module hot."""
    output = rk.output
    fell_back = [match.end() for match in re.finditer(r"does not start from the project checkpoint", output)]
    if fell_back:
        wait_for(lambda: re.search(CHECKPOINT_READY, rk.output[fell_back[-1]:]), 120,
                 "the project checkpoint rebuilt without the edited module")


def _generations(output: str) -> list[int]:
    return sorted({int(g) for g in re.findall(r"started pid \d+ \(generation (\d+)\)", output)})


#: How the warm parents fork: as on Linux (the checkpoint forked from the installed-modules
#: parent, generations forked ahead, all with clone(2)'s CLONE_PARENT), or where that call is
#: refused (macOS has no clone): a fresh interpreter builds the checkpoint, in a cold start's
#: order, and each generation is forked at its start, twice.
FORKS = ("clone-parent", "no-clone-parent")


@pytest.mark.parametrize("forks", FORKS)
def test_warm_reloads_serve_what_a_cold_start_serves(tmp_path: Path, forks: str) -> None:
    (tmp_path / "run").mkdir()
    project = shopgen.generate(tmp_path / "proj", MODELS)
    args = ["-v", "-b", "127.0.0.1:0", "--", "uvicorn", "--fd", "3", "shop.main:app"]
    argv = None
    if forks == "no-clone-parent":
        argv = [sys.executable, str(Path(__file__).parent / "refuse.py"), "clone-parent", "-m", "reloadkit", "run", *args]
    with Reloadkit(args, cwd=project.root, env=server_env(project.root), argv=argv) as rk:
        url = rk.url
        _serves(url, "/r0/marker", lambda s, b: b == "r0 v0", "generation 0 to serve")
        rk.wait_for_output(READY, timeout=120)
        assert_as_cold(url, project)
        for name, edit, path, answered in _corpus(project):
            edit()
            _serves(url, path, answered, f"the reload after {name} to serve it")
            assert_as_cold(url, project)
            _checkpoint_settled(rk)
        # A syntax error: the warm generation that imports it exits before it is ready, is
        # started again cold (docs/warm.rst: "a second line of defence"), fails the same way,
        # and reloadkit shows the error page; the parent is untouched and the fix reloads warm.
        before_break = len(rk.output)
        good = shopgen.break_syntax(project, "r_3")
        _serves(url, "/", lambda s, b: s == 503 and "SyntaxError" in b, "the error page for the syntax error")
        # Then the cold start again of the warm one, which fails the same way.
        wait_for(lambda: re.search(r"exited with status 1; waiting for a change", rk.output[before_break:]), 60,
                 "the broken generation's cold start again to fail too")
        after_break = len(rk.output)
        shopgen.restore(project, "r_3", good)
        _serves(url, "/", lambda s, b: s == 200, "the fixed code to serve")
        assert_as_cold(url, project)
        output = rk.output
        pids = rk.tree_pids()
        rk.close()
    assert_all_gone(pids)
    outside = output[:before_break] + output[after_break:]
    for line in ("starts cold", "failed warm", "Traceback", "rebuilding"):
        assert line not in outside, output
    generations = _generations(output)
    assert len(generations) >= len(_corpus(project)) + 3, output  # generation 0, the broken one, the fix
    from_checkpoint = []
    for generation in generations[1:]:
        assert re.search(rf"generation {generation} forked warm from pid (\d+)", output), (generation, output)
        if re.search(rf"generation {generation} forked warm from pid \d+ \(the project checkpoint\)", output):
            from_checkpoint.append(generation)
    # The edits of modules the checkpoint held (a handler first, the settings, a new module's
    # file) fork from the installed-modules parent; the others from the project checkpoint.
    assert len(from_checkpoint) >= 4, output
    assert "discarded the warm parent" not in output, output  # the syntax error left the parents alone
    builds = re.findall(r"building the project checkpoint \(pid \d+(, forked from pid \d+)?\)", output)
    assert len(builds) >= 4, output
    if forks == "clone-parent":
        # Every checkpoint was forked from the installed-modules parent: these reloads prove
        # that its order (the installed modules first, then the project's) serves as cold.
        assert all(builds), output
        assert "(forked ahead as pid" in output, output
    else:
        assert not any(builds), output
        assert output.count("the project checkpoint is built by a fresh interpreter") == 1, output
        assert "(forked ahead as pid" not in output, output
