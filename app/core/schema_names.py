"""Names for types the OpenAPI spec would otherwise inline in every field that uses them.

A generated client makes a class for each inline enum, named after its field
(`DeviceReadPlatform`, `DeviceRegistrationPlatform`, ...); a named one is a single
component (`Platform`) that every field and parameter references.
"""

from typing import Annotated, Any, get_args, get_origin

from pydantic import ConfigDict, GetCoreSchemaHandler
from pydantic_core import CoreSchema


class SchemaName:
    """`Annotated[Literal[...], SchemaName("Platform")]`: the type is published as the
    component `Platform`. Python code still sees the Literal (mypy looks through
    Annotated); validation is unchanged."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # Pydantic publishes a core schema that has a `ref` once, under that name, and
        # references it everywhere; FastAPI moves it to components/schemas.
        return {**handler(source), "ref": self.name}


def literal_values(literal: Any) -> tuple[str, ...]:
    """The values of a Literal type, named with SchemaName or not."""
    if get_origin(literal) is Annotated:
        literal = get_args(literal)[0]
    values: tuple[str, ...] = get_args(literal)
    return values


# For response models whose fields have defaults: every field is still sent, so the
# schema lists it as required, and a generated client types it `X | None` rather than
# "maybe absent" (`Unset`).
RESPONSE_MODEL_CONFIG = ConfigDict(json_schema_serialization_defaults_required=True)
