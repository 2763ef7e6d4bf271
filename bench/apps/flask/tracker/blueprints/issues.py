from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from ..extensions import db
from ..models import Comment, Issue, IssueState, Priority, Project, User

bp = Blueprint("issues", __name__)


@bp.get("/<int:issue_id>")
def detail(issue_id: int) -> str:
    issue = db.get_or_404(Issue, issue_id)
    return render_template("issues/detail.html", issue=issue)


@bp.post("/")
def create() -> Response:
    project = db.first_or_404(select(Project).where(Project.key == request.form.get("project", "")))
    reporter = db.first_or_404(select(User).where(User.username == request.form.get("reporter", "")))
    number = (db.session.scalar(select(func.max(Issue.number)).where(Issue.project_id == project.id)) or 0) + 1
    issue = Issue(
        project=project, number=number, title=request.form["title"], body=request.form.get("body", ""),
        reporter=reporter, priority=Priority[request.form.get("priority", "NORMAL").upper()],
    )
    db.session.add(issue)
    db.session.commit()
    return redirect(url_for("issues.detail", issue_id=issue.id))


@bp.post("/<int:issue_id>/comments")
def comment(issue_id: int) -> Response:
    issue = db.get_or_404(Issue, issue_id)
    author = db.first_or_404(select(User).where(User.username == request.form.get("author", "")))
    text = request.form.get("body", "").strip()
    if not text:
        abort(400, "an empty comment")
    db.session.add(Comment(issue=issue, author=author, body=text))
    db.session.commit()
    return redirect(url_for("issues.detail", issue_id=issue.id))


@bp.post("/<int:issue_id>/close")
def close(issue_id: int) -> Response:
    issue = db.get_or_404(Issue, issue_id)
    issue.state = IssueState.CLOSED
    issue.closed = dt.datetime.now(dt.timezone.utc)
    db.session.commit()
    return redirect(url_for("issues.detail", issue_id=issue.id))
