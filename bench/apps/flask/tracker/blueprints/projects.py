from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..extensions import db
from ..models import Issue, Milestone, Project

bp = Blueprint("projects", __name__)


@bp.get("/")
def index() -> str:
    projects = db.session.scalars(select(Project).order_by(Project.key)).all()
    return render_template("projects/index.html", projects=projects)


@bp.post("/")
def create() -> Response:
    key = request.form.get("key", "").strip().upper()
    name = request.form.get("name", "").strip()
    if not key or not name:
        abort(400, "key and name are required")
    project = Project(key=key, name=name, description=request.form.get("description", ""))
    db.session.add(project)
    db.session.commit()
    return redirect(url_for("projects.detail", key=project.key))


@bp.get("/<key>")
def detail(key: str) -> str:
    project = db.first_or_404(select(Project).where(Project.key == key))
    page = db.paginate(
        select(Issue).where(Issue.project_id == project.id).order_by(Issue.number.desc()),
        per_page=25,
    )
    milestones = db.session.scalars(select(Milestone).where(Milestone.project_id == project.id)).all()
    return render_template("projects/detail.html", project=project, page=page, milestones=milestones)
