"""An issue tracker: Flask, Flask-SQLAlchemy (SQLite), blueprints, templates and a JSON API.

The benchmark's real Flask app: ``flask --app tracker run``. ``GET /version`` answers with
``tracker.version.VERSION``, which the benchmark rewrites to measure save → first new response.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask

from .extensions import db
from .startup import record_start


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    # outside the source tree, so that SQLite's journal never looks like an edit to a reloader
    state = Path(os.environ.get("BENCH_STATE_DIR") or tempfile.gettempdir())
    app.config.from_mapping(
        SECRET_KEY="dev-only",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{state / 'tracker.sqlite3'}",
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"check_same_thread": False}},
        ISSUES_PER_PAGE=25,
    )
    if config:
        app.config.update(config)
    db.init_app(app)

    from .blueprints import api, issues, projects, users, web

    app.register_blueprint(web.bp)
    app.register_blueprint(projects.bp, url_prefix="/projects")
    app.register_blueprint(issues.bp, url_prefix="/issues")
    app.register_blueprint(users.bp, url_prefix="/users")
    app.register_blueprint(api.bp, url_prefix="/api")

    from . import models  # noqa: F401 - the tables, for create_all

    with app.app_context():
        db.create_all()

    @app.template_filter("initials")
    def initials(name: str) -> str:
        return "".join(part[0].upper() for part in name.split() if part)

    record_start()
    return app
