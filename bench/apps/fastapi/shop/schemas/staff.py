"""Request and response bodies of the staff domain (pydantic)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DepartmentSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    name: str = Field(..., max_length=100)
    cost_centre: str = Field(..., max_length=12)


class RoleSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    name: str = Field(..., max_length=60)
    description: str


class PermissionSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    codename: str = Field(..., max_length=100)
    role_id: int = Field(..., gt=0)


class EmployeeSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    email: str = Field(..., max_length=254)
    full_name: str = Field(..., max_length=160)
    department_id: int = Field(..., gt=0)
    role_id: int = Field(..., gt=0)
    hired_on: dt.date
    active: bool = False

    @field_validator("email")
    @classmethod
    def _email_has_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("not an e-mail address")
        return value.lower()


class ShiftSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, str_strip_whitespace=True)

    id: int | None = None
    employee_id: int = Field(..., gt=0)
    warehouse_id: int = Field(..., gt=0)
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
