"""Use cases of custom field definitions, and the definitions other domains validate against."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import UnitOfWork
from app.core.errors import Conflict, FieldError, InvalidInput, NotFound
from app.fields import repository
from app.fields.models import CustomField
from app.fields.values import FieldDefinition, FieldDefinitions, FieldEntity, FieldType
from app.projects import service as projects_service

# Keys that would be ambiguous next to built-in profile fields and identifier kinds.
RESERVED_KEYS = frozenset(
    {
        "first_name",
        "last_name",
        "middle_name",
        "birth_date",
        "gender",
        "area",
        "time_zone",
        "email",
        "phone",
        "discount_card",
        "discount_cards",
        "customer_id",
        "id",
        "external",
        "app_installation",
        "push_token",
    }
)
# Every customer write loads all definitions of the project, so their number is bounded.
MAX_FIELDS_PER_ENTITY = 500


async def create_field(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    entity: FieldEntity,
    key: str,
    label: str | None,
    field_type: FieldType,
    enum_values: list[str] | None,
    max_length: int | None,
) -> CustomField:
    """A new field definition; definitions never change afterwards."""
    errors = _definition_errors(
        key=key, field_type=field_type, enum_values=enum_values, max_length=max_length
    )
    if errors:
        noun = "value" if len(errors) == 1 else "values"
        raise InvalidInput(f"{len(errors)} invalid {noun} in the request.", errors=errors)
    async with uow:
        session = uow.session
        existing = await repository.get_field(
            session, project_id=project_id, entity=entity, key=key
        )
        if existing is not None:
            raise Conflict(f"A field with the key {key!r} already exists.")
        count = await repository.count_fields(session, project_id=project_id, entity=entity)
        if count >= MAX_FIELDS_PER_ENTITY:
            raise Conflict(f"A project may define at most {MAX_FIELDS_PER_ENTITY} {entity} fields.")
        field = CustomField(
            project_id=project_id,
            entity=entity,
            key=key,
            label=label,
            type=field_type,
            enum_values=enum_values,
            max_length=max_length,
        )
        added = await repository.add_field(session, field)
        await projects_service.bump_rules_version(session, project_id)
        return added


def _definition_errors(
    *, key: str, field_type: FieldType, enum_values: list[str] | None, max_length: int | None
) -> list[FieldError]:
    """Rules across the body's fields, each reported at its own pointer."""
    errors: list[FieldError] = []
    if key in RESERVED_KEYS:
        errors.append(
            FieldError(pointer="/key", message=f"{key!r} is reserved for a built-in field")
        )
    if field_type is FieldType.ENUM:
        errors.extend(_enum_values_errors(enum_values))
    elif enum_values is not None:
        errors.append(FieldError(pointer="/enum_values", message="Only enum fields take values"))
    if max_length is not None and field_type is not FieldType.STRING:
        errors.append(
            FieldError(pointer="/max_length", message="Only string fields take a max_length")
        )
    return errors


def _enum_values_errors(enum_values: list[str] | None) -> list[FieldError]:
    if not enum_values:
        return [FieldError(pointer="/enum_values", message="Enum fields need at least one value")]
    seen: set[str] = set()
    errors: list[FieldError] = []
    for index, value in enumerate(enum_values):
        if value in seen:
            errors.append(
                FieldError(pointer=f"/enum_values/{index}", message="Duplicate enum value")
            )
        seen.add(value)
    return errors


async def list_fields(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    *,
    entity: FieldEntity | None,
    after_id: uuid.UUID | None,
    limit: int,
) -> list[CustomField]:
    """Fields ordered by id (their creation order)."""
    async with uow:
        return await repository.list_fields(
            uow.session, project_id=project_id, entity=entity, after_id=after_id, limit=limit
        )


async def get_field(
    uow: UnitOfWork, project_id: uuid.UUID, *, entity: FieldEntity, key: str
) -> CustomField:
    async with uow:
        field = await repository.get_field(
            uow.session, project_id=project_id, entity=entity, key=key
        )
        if field is None:
            raise NotFound(f"No {entity} field with the key {key!r}.")
        return field


async def definitions_for(
    session: AsyncSession, project_id: uuid.UUID, *, entity: str = FieldEntity.CUSTOMER
) -> FieldDefinitions:
    """The project's field definitions by key, read in the caller's transaction."""
    fields = await repository.all_fields(session, project_id=project_id, entity=entity)
    return {field.key: _definition(field) for field in fields}


def _definition(field: CustomField) -> FieldDefinition:
    enum_values = tuple(field.enum_values) if field.enum_values is not None else None
    return FieldDefinition(
        key=field.key,
        type=FieldType(field.type),
        enum_values=enum_values,
        max_length=field.max_length,
    )
