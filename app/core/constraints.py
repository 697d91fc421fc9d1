"""Database constraint names mapped to the domain errors clients see.

The database is the last guard of every uniqueness rule; when it fires, the error is
chosen here by constraint name, never by matching message text.
"""

from app.core.errors import Conflict, DomainError, IdentifierTaken

_ERRORS: dict[str, tuple[type[Conflict], str]] = {
    "uq_projects_name": (Conflict, "A project with this name already exists."),
    "uq_api_keys_project_id_name": (Conflict, "An active API key with this name already exists."),
    "uq_custom_fields_project_id_entity_key": (Conflict, "A field with this key already exists."),
    "uq_customer_identifiers_project_id_kind_value": (
        IdentifierTaken,
        "An identifier already belongs to another customer.",
    ),
    "uq_customer_identifiers_single_valued": (
        IdentifierTaken,
        "The customer already holds an identifier of this kind.",
    ),
}


def domain_error_for_constraint(constraint_name: str | None) -> DomainError | None:
    if constraint_name is None or constraint_name not in _ERRORS:
        return None
    error_class, message = _ERRORS[constraint_name]
    return error_class(message)
