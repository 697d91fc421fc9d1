"""The API-key dependency every protected route uses: `Depends(require_scope(Scope.X))`."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import RateLimiterDep, UnitOfWorkDep
from app.core.errors import Forbidden, RateLimited, Unauthenticated
from app.core.request_context import current_request_id
from app.projects import service

# auto_error=False: a missing header must become our 401 problem, not FastAPI's 403.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer cdp_<prefix>_<secret>`",
)


async def _any_key(
    uow: UnitOfWorkDep,
    limiter: RateLimiterDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("Send the API key as `Authorization: Bearer cdp_...`.")
    principal = await service.authenticate(uow, credentials.credentials)
    if limiter.enabled:
        wait = limiter.acquire(principal.key_id)
        if wait > 0:
            raise RateLimited(
                "This API key sent more requests than its rate allows.",
                retry_after_seconds=limiter.retry_after_seconds(wait),
            )
    return principal


async def secret_key_principal(
    principal: Annotated[Principal, Depends(_any_key)],
) -> Principal:
    """Every route but /v1/me: a publishable key (shipped inside apps) does not reach it."""
    if principal.kind != "secret":
        raise Forbidden("A publishable key reaches only /v1/me; use a secret key.")
    return principal


async def publishable_key_principal(
    principal: Annotated[Principal, Depends(_any_key)],
) -> Principal:
    """/v1/me: the app's publishable key; a secret key never belongs inside an app."""
    if principal.kind != "publishable":
        raise Forbidden("/v1/me takes a publishable key (plus X-Customer-Token).")
    return principal


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that yields the Principal if its key holds `scope` (or `admin`)."""

    async def principal_with_scope(
        principal: Annotated[Principal, Depends(secret_key_principal)],
    ) -> Principal:
        if not principal.has_scope(scope):
            raise Forbidden(f"This operation needs the `{scope}` scope.")
        return principal

    return principal_with_scope


def require_actor(scope: Scope) -> Callable[..., Awaitable[Actor]]:
    """Like require_scope, for writes: yields the Actor that changelogs record."""

    async def actor_with_scope(
        principal: Annotated[Principal, Depends(require_scope(scope))],
        x_touchpoint: TouchpointHeader = None,
    ) -> Actor:
        return actor_for(principal, x_touchpoint)

    return actor_with_scope


TouchpointHeader = Annotated[
    str | None,
    Header(
        max_length=100,
        description="Record this touchpoint instead of the key's own; it must be one "
        "of the key's `allowed_touchpoints`.",
    ),
]


def actor_for(principal: Principal, touchpoint: str | None) -> Actor:
    """The Actor of a write, acting as `touchpoint` (default: the key's own) if allowed."""
    acting_as = touchpoint or principal.touchpoint
    if not principal.may_act_as(acting_as):
        raise Forbidden(f"This API key may not act as touchpoint {acting_as!r}.")
    return Actor(
        project_id=principal.project_id,
        touchpoint=acting_as,
        initiator=principal.key_name,
        key_id=principal.key_id,
        request_id=current_request_id(),
        project=principal.project,
    )


PrincipalDep = Annotated[Principal, Depends(secret_key_principal)]
PublishableDep = Annotated[Principal, Depends(publishable_key_principal)]
AdminDep = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
