from __future__ import annotations

from flask import Blueprint, Response, render_template
from sqlalchemy import func, select

from ..extensions import db
from ..models import Issue, IssueState, Project
from ..version import VERSION

bp = Blueprint("web", __name__)


@bp.get("/")
def dashboard() -> str:
    counts = dict(db.session.execute(select(Issue.state, func.count()).group_by(Issue.state)).all())
    projects = db.session.scalars(select(Project).order_by(Project.name)).all()
    return render_template("dashboard.html", counts=counts, projects=projects, states=list(IssueState))


@bp.get("/version")
def version() -> Response:
    return Response(VERSION, mimetype="text/plain")


@bp.get("/health")
def health() -> dict[str, str]:
    db.session.execute(select(1))
    return {"status": "ok"}
