"""A small JSON API over the same tables."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..extensions import db
from ..models import Issue, IssueState, Label, Project, User

bp = Blueprint("api", __name__)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "a JSON object is required")
    return data


@bp.get("/projects")
def projects() -> ResponseReturnValue:
    return jsonify([p.to_dict() for p in db.session.scalars(select(Project).order_by(Project.key))])


@bp.post("/projects")
def create_project() -> ResponseReturnValue:
    data = _body()
    project = Project(key=str(data["key"]).upper(), name=data["name"], description=data.get("description", ""))
    db.session.add(project)
    db.session.commit()
    return jsonify(project.to_dict()), 201


@bp.post("/users")
def create_user() -> ResponseReturnValue:
    data = _body()
    user = User(username=data["username"], email=data["email"], full_name=data.get("full_name", ""))
    db.session.add(user)
    db.session.commit()
    return jsonify(user.to_dict()), 201


@bp.get("/issues")
def issues() -> ResponseReturnValue:
    query = select(Issue).order_by(Issue.id.desc()).limit(min(int(request.args.get("limit", 50)), 200))
    if state := request.args.get("state"):
        query = query.where(Issue.state == IssueState(state))
    if label := request.args.get("label"):
        query = query.where(Issue.labels.any(Label.name == label))
    return jsonify([issue.to_dict() for issue in db.session.scalars(query)])


@bp.get("/issues/<int:issue_id>")
def issue(issue_id: int) -> ResponseReturnValue:
    return jsonify(db.get_or_404(Issue, issue_id).to_dict())
