from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from ..extensions import db
from ..models import Issue, IssueState, User

bp = Blueprint("users", __name__)


@bp.get("/<username>")
def profile(username: str) -> str:
    user = db.first_or_404(select(User).where(User.username == username))
    open_issues = db.session.scalars(
        select(Issue).where(Issue.assignee_id == user.id, Issue.state != IssueState.CLOSED).order_by(Issue.opened)
    ).all()
    return render_template("users/profile.html", user=user, open_issues=open_issues)
