"""Plain async factories: `await make_project(uow, name=...)`."""

from dataclasses import dataclass
from typing import Any

import httpx

from app.core.auth import Scope
from app.core.db import UnitOfWork
from app.projects import service
from app.projects.models import Project


@dataclass(frozen=True)
class ProjectWithKey:
    project: Project
    admin_token: str

    @property
    def admin_headers(self) -> dict[str, str]:
        return bearer(self.admin_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_project(uow: UnitOfWork, *, name: str) -> ProjectWithKey:
    project, issued = await service.create_project(uow, name=name)
    return ProjectWithKey(project=project, admin_token=issued.token)


async def make_key(
    uow: UnitOfWork, project: Project, *, scopes: list[Scope], name: str = "worker"
) -> str:
    issued = await service.create_api_key(uow, project.id, name=name, scopes=scopes)
    return issued.token


async def make_unique_id_field(client: httpx.AsyncClient, owner: ProjectWithKey, key: str) -> None:
    response = await client.post(
        "/v1/fields", headers=owner.admin_headers, json={"key": key, "type": "unique_id"}
    )
    assert response.status_code == 201, response.text


async def identify(
    client: httpx.AsyncClient, owner: ProjectWithKey, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/v1/customers/identify", headers=owner.admin_headers, json=body)
