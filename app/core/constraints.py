"""Database constraint names mapped to the domain errors clients see.

The database is the last guard of every uniqueness rule; when it fires, the error is
chosen here by constraint name, never by matching message text.
"""

from app.core.errors import Conflict, DomainError

_CONFLICTS: dict[str, str] = {
    "uq_projects_name": "A project with this name already exists.",
    "uq_api_keys_project_id_name": "An active API key with this name already exists.",
}


def domain_error_for_constraint(constraint_name: str | None) -> DomainError | None:
    if constraint_name is None:
        return None
    message = _CONFLICTS.get(constraint_name)
    return Conflict(message) if message is not None else None
