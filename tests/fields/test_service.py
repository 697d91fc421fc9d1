"""The definitions other domains validate against, and the database's own guards."""

import pytest
from sqlalchemy.exc import IntegrityError

from app.core.db import UnitOfWork
from app.core.errors import Conflict
from app.fields import repository, service
from app.fields.models import CustomField
from app.fields.values import FieldDefinition, FieldEntity, FieldType, unique_id_keys
from tests.factories import ProjectWithKey


async def _define(
    uow: UnitOfWork,
    project: ProjectWithKey,
    key: str,
    field_type: FieldType,
    *,
    enum_values: list[str] | None = None,
    max_length: int | None = None,
) -> CustomField:
    return await service.create_field(
        uow,
        project.project.id,
        entity=FieldEntity.CUSTOMER,
        key=key,
        label=None,
        field_type=field_type,
        enum_values=enum_values,
        max_length=max_length,
    )


async def test_definitions_are_read_in_the_callers_transaction(
    uow: UnitOfWork, project: ProjectWithKey, other_project: ProjectWithKey
) -> None:
    await _define(uow, project, "tier", FieldType.ENUM, enum_values=["a", "b"])
    await _define(uow, project, "nickname", FieldType.STRING, max_length=20)
    await _define(uow, project, "crm_id", FieldType.UNIQUE_ID)
    await _define(uow, other_project, "elsewhere", FieldType.STRING)

    async with uow:
        definitions = await service.definitions_for(uow.session, project.project.id)

    assert definitions == {
        "tier": FieldDefinition(key="tier", type=FieldType.ENUM, enum_values=("a", "b")),
        "nickname": FieldDefinition(key="nickname", type=FieldType.STRING, max_length=20),
        "crm_id": FieldDefinition(key="crm_id", type=FieldType.UNIQUE_ID),
    }
    assert unique_id_keys(definitions) == {"crm_id"}


async def test_a_project_without_fields_has_no_definitions(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    async with uow:
        assert await service.definitions_for(uow.session, project.project.id) == {}


async def test_the_number_of_fields_is_bounded(
    uow: UnitOfWork, project: ProjectWithKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_FIELDS_PER_ENTITY", 2)
    await _define(uow, project, "one", FieldType.STRING)
    await _define(uow, project, "two", FieldType.STRING)
    with pytest.raises(Conflict, match="at most 2 customer fields"):
        await _define(uow, project, "three", FieldType.STRING)


async def test_unique_constraint_is_a_conflict_when_the_check_is_raced(
    uow: UnitOfWork, project: ProjectWithKey
) -> None:
    await _define(uow, project, "tier", FieldType.STRING)
    # Straight to the repository: what a concurrent request that passed the check would do.
    duplicate = CustomField(
        project_id=project.project.id, entity="customer", key="tier", type="integer"
    )
    with pytest.raises(Conflict, match="already exists"):
        async with uow:
            await repository.add_field(uow.session, duplicate)


@pytest.mark.parametrize(
    "columns",
    [
        {"key": "Bad", "type": "string"},
        {"key": "tier", "type": "money"},
        {"key": "tier", "type": "string", "entity": "order"},
        {"key": "tier", "type": "enum"},
        {"key": "tier", "type": "enum", "enum_values": []},
        {"key": "tier", "type": "string", "enum_values": ["a"]},
        {"key": "tier", "type": "integer", "max_length": 5},
        {"key": "tier", "type": "string", "max_length": 0},
    ],
)
async def test_the_database_refuses_invalid_definitions(
    uow: UnitOfWork, project: ProjectWithKey, columns: dict[str, object]
) -> None:
    field = CustomField(project_id=project.project.id, **({"entity": "customer"} | columns))
    with pytest.raises(IntegrityError, match="ck_custom_fields_"):
        async with uow:
            await repository.add_field(uow.session, field)
