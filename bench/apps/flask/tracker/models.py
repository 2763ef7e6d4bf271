"""The tracker's tables: users, teams, projects, milestones, issues, labels, comments, ..."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, DateTime, Enum, ForeignKey, Integer, String, Table, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class IssueState(str, enum.Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class Priority(int, enum.Enum):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4


issue_labels = Table(
    "issue_labels",
    db.metadata,
    Column("issue_id", ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
)

team_members = Table(
    "team_members",
    db.metadata,
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(120), default="")
    joined: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    teams: Mapped[list[Team]] = relationship(secondary=team_members, back_populates="members")
    assigned: Mapped[list[Issue]] = relationship(back_populates="assignee", foreign_keys="Issue.assignee_id")

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "full_name": self.full_name}


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    members: Mapped[list[User]] = relationship(secondary=team_members, back_populates="teams")
    projects: Mapped[list[Project]] = relationship(back_populates="team")


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(10), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    team: Mapped[Team | None] = relationship(back_populates="projects")
    issues: Mapped[list[Issue]] = relationship(back_populates="project", cascade="all, delete-orphan")
    milestones: Mapped[list[Milestone]] = relationship(back_populates="project", cascade="all, delete-orphan")

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "key": self.key, "name": self.name, "description": self.description}


class Milestone(db.Model):
    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("project_id", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(80))
    due: Mapped[dt.date | None]

    project: Mapped[Project] = relationship(back_populates="milestones")
    issues: Mapped[list[Issue]] = relationship(back_populates="milestone")


class Label(db.Model):
    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    colour: Mapped[str] = mapped_column(String(7), default="#cccccc")


class Issue(db.Model):
    __tablename__ = "issues"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[IssueState] = mapped_column(Enum(IssueState), default=IssueState.OPEN, index=True)
    priority: Mapped[Priority] = mapped_column(Enum(Priority), default=Priority.NORMAL)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id", ondelete="SET NULL"))
    opened: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    closed: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    project: Mapped[Project] = relationship(back_populates="issues")
    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])
    assignee: Mapped[User | None] = relationship(back_populates="assigned", foreign_keys=[assignee_id])
    milestone: Mapped[Milestone | None] = relationship(back_populates="issues")
    labels: Mapped[list[Label]] = relationship(secondary=issue_labels)
    comments: Mapped[list[Comment]] = relationship(back_populates="issue", cascade="all, delete-orphan", order_by="Comment.written")
    attachments: Mapped[list[Attachment]] = relationship(back_populates="issue", cascade="all, delete-orphan")

    @property
    def ref(self) -> str:
        return f"{self.project.key}-{self.number}"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "ref": self.ref, "title": self.title, "state": self.state.value,
            "priority": self.priority.name.lower(), "labels": [label.name for label in self.labels],
            "assignee": self.assignee.username if self.assignee else None,
        }


class Comment(db.Model):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    written: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    issue: Mapped[Issue] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()


class Attachment(db.Model):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    uploaded: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    issue: Mapped[Issue] = relationship(back_populates="attachments")


class Watch(db.Model):
    __tablename__ = "watches"
    __table_args__ = (UniqueConstraint("issue_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class Activity(db.Model):
    __tablename__ = "activity"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verb: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
