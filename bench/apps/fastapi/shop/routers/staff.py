"""Routes of the staff domain: a list and a create route per table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db import SessionDep
from ..models.staff import Department, Employee, Permission, Role, Shift
from ..schemas.staff import DepartmentSchema, EmployeeSchema, PermissionSchema, RoleSchema, ShiftSchema

router = APIRouter(tags=["staff"])


@router.get("/departments", response_model=list[DepartmentSchema])
def list_departments(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.id).limit(limit).offset(offset)))


@router.post("/departments", response_model=DepartmentSchema, status_code=status.HTTP_201_CREATED)
def create_department(body: DepartmentSchema, session: SessionDep) -> Department:
    row = Department(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing department") from exc
    session.refresh(row)
    return row


@router.get("/roles", response_model=list[RoleSchema])
def list_roles(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.id).limit(limit).offset(offset)))


@router.post("/roles", response_model=RoleSchema, status_code=status.HTTP_201_CREATED)
def create_role(body: RoleSchema, session: SessionDep) -> Role:
    row = Role(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing role") from exc
    session.refresh(row)
    return row


@router.get("/permissions", response_model=list[PermissionSchema])
def list_permissions(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    role_id: int | None = None,
) -> list[Permission]:
    query = select(Permission).order_by(Permission.id).limit(limit).offset(offset)
    if role_id is not None:
        query = query.where(Permission.role_id == role_id)
    return list(session.scalars(query))


@router.post("/permissions", response_model=PermissionSchema, status_code=status.HTTP_201_CREATED)
def create_permission(body: PermissionSchema, session: SessionDep) -> Permission:
    row = Permission(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing permission") from exc
    session.refresh(row)
    return row


@router.get("/employees", response_model=list[EmployeeSchema])
def list_employees(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    department_id: int | None = None,
) -> list[Employee]:
    query = select(Employee).order_by(Employee.id).limit(limit).offset(offset)
    if department_id is not None:
        query = query.where(Employee.department_id == department_id)
    return list(session.scalars(query))


@router.post("/employees", response_model=EmployeeSchema, status_code=status.HTTP_201_CREATED)
def create_employee(body: EmployeeSchema, session: SessionDep) -> Employee:
    row = Employee(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing employee") from exc
    session.refresh(row)
    return row


@router.get("/shifts", response_model=list[ShiftSchema])
def list_shifts(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    employee_id: int | None = None,
) -> list[Shift]:
    query = select(Shift).order_by(Shift.id).limit(limit).offset(offset)
    if employee_id is not None:
        query = query.where(Shift.employee_id == employee_id)
    return list(session.scalars(query))


@router.post("/shifts", response_model=ShiftSchema, status_code=status.HTTP_201_CREATED)
def create_shift(body: ShiftSchema, session: SessionDep) -> Shift:
    row = Shift(**body.model_dump(exclude={"id"}, exclude_none=True))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "conflicts with an existing shift") from exc
    session.refresh(row)
    return row
