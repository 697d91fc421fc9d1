"""The API-key dependency every protected route uses: `Depends(require_scope(Scope.X))`."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.auth import Principal, Scope
from app.core.dependencies import RateLimiterDep, UnitOfWorkDep
from app.core.errors import Forbidden, RateLimited, Unauthenticated
from app.projects import service

# auto_error=False: a missing header must become our 401 problem, not FastAPI's 403.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer cdp_<prefix>_<secret>`",
)


async def authenticated_principal(
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


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that yields the Principal if its key holds `scope` (or `admin`)."""

    async def principal_with_scope(
        principal: Annotated[Principal, Depends(authenticated_principal)],
    ) -> Principal:
        if not principal.has_scope(scope):
            raise Forbidden(f"This operation needs the `{scope}` scope.")
        return principal

    return principal_with_scope


PrincipalDep = Annotated[Principal, Depends(authenticated_principal)]
AdminDep = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
