"""HTTP endpoints of devices and customer auth tokens (secret keys), and /v1/me (an app's
publishable key plus the customer's token)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from app.core.auth import Actor, Principal, Scope
from app.core.dependencies import UnitOfWorkDep
from app.core.errors import FieldError, InvalidInput, Unauthenticated
from app.core.problems import problem_responses
from app.customers import service as customers_service
from app.customers.presenters import customer_read
from app.customers.schemas import CustomerRead
from app.devices import service, tokens
from app.devices.models import CustomerDevice, Device
from app.devices.schemas import (
    INSTALLATION_ID_PATTERN,
    AuthTokenIssued,
    CustomerDeviceRead,
    DeviceCustomerRead,
    DevicePatch,
    DeviceRead,
    DeviceRegistration,
)
from app.projects.auth import PublishableDep, actor_for, require_actor, require_scope

router = APIRouter(tags=["devices"], responses=problem_responses(401, 403, 404, 422, 429))
me_router = APIRouter(prefix="/v1/me", tags=["me"], responses=problem_responses(401, 403, 422, 429))
ReaderDep = Annotated[Principal, Depends(require_scope(Scope.CUSTOMERS_READ))]
WriterDep = Annotated[Actor, Depends(require_actor(Scope.CUSTOMERS_WRITE))]
InstallationId = Annotated[
    str,
    Path(pattern=INSTALLATION_ID_PATTERN, description="The app's own id of this installation."),
]
CustomerToken = Annotated[
    str | None,
    Header(max_length=128, description="The customer's auth token (from POST .../auth-token)."),
]


def _device_read(device: Device) -> DeviceRead:
    return DeviceRead.model_validate(device)


@router.put(
    "/v1/customers/{customer_id}/devices/{installation_id}",
    operation_id="devices_register",
)
async def devices_register(
    customer_id: uuid.UUID,
    installation_id: InstallationId,
    body: DeviceRegistration,
    uow: UnitOfWorkDep,
    actor: WriterDep,
) -> DeviceRead:
    """Register or update an installation and link it to the customer."""
    device = await service.register_device(
        uow, actor, installation_id, body, customer_id=customer_id
    )
    return _device_read(device)


@router.get("/v1/customers/{customer_id}/devices", operation_id="devices_list_for_customer")
async def devices_list_for_customer(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep
) -> list[CustomerDeviceRead]:
    """The devices a customer uses, most recently seen first, and how many others share each."""
    found = await service.customer_devices(uow, principal.project_id, customer_id)
    return [_customer_device(device, link, shared) for device, link, shared in found]


def _customer_device(device: Device, link: CustomerDevice, shared: int) -> CustomerDeviceRead:
    return CustomerDeviceRead(
        **_device_read(device).model_dump(),
        linked_first_seen_at=link.first_seen_at,
        linked_last_seen_at=link.last_seen_at,
        shared_with=shared,
    )


@router.delete(
    "/v1/customers/{customer_id}/devices/{installation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="devices_unlink",
)
async def devices_unlink(
    customer_id: uuid.UUID, installation_id: InstallationId, uow: UnitOfWorkDep, actor: WriterDep
) -> Response:
    """Unlink a device from the customer (the device stays for its other users)."""
    await service.unlink_device(uow, actor, customer_id, installation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/devices/{device_id}/customers", operation_id="devices_list_customers")
async def devices_list_customers(
    device_id: uuid.UUID, uow: UnitOfWorkDep, principal: ReaderDep
) -> list[DeviceCustomerRead]:
    """The customers who use this device, most recently seen first."""
    links = await service.device_customers(uow, principal.project_id, device_id)
    return [
        DeviceCustomerRead(
            customer_id=link.customer_id,
            first_seen_at=link.first_seen_at,
            last_seen_at=link.last_seen_at,
        )
        for link in links
    ]


@router.get("/v1/devices", operation_id="devices_find")
async def devices_find(
    uow: UnitOfWorkDep,
    principal: ReaderDep,
    push_token: Annotated[str | None, Query(max_length=2048)] = None,
    installation_id: Annotated[str | None, Query(pattern=INSTALLATION_ID_PATTERN)] = None,
) -> list[DeviceRead]:
    """Find the device holding a push token (or an installation id)."""
    if (push_token is None) == (installation_id is None):
        raise InvalidInput(
            "Give exactly one of push_token and installation_id.",
            errors=[FieldError(location="query", pointer="", message="One filter required")],
        )
    devices = await service.find_devices(
        uow, principal.project_id, push_token=push_token, installation_id=installation_id
    )
    return [_device_read(d) for d in devices]


@router.patch("/v1/devices/{device_id}", operation_id="devices_update")
async def devices_update(
    device_id: uuid.UUID, body: DevicePatch, uow: UnitOfWorkDep, actor: WriterDep
) -> DeviceRead:
    """Turn push off for a device whose token the provider rejected (or on again)."""
    device = await service.set_push_enabled(uow, actor, device_id, push_enabled=body.push_enabled)
    return _device_read(device)


@router.post(
    "/v1/customers/{customer_id}/auth-token",
    status_code=status.HTTP_201_CREATED,
    operation_id="devices_issue_auth_token",
)
async def devices_issue_auth_token(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, actor: WriterDep
) -> AuthTokenIssued:
    """Issue (or rotate) the customer's auth token for an app; it is shown only here."""
    issued = await tokens.issue_auth_token(uow, actor, customer_id)
    return AuthTokenIssued(
        token=issued.token, fingerprint=issued.fingerprint, issued_at=issued.issued_at
    )


@router.delete(
    "/v1/customers/{customer_id}/auth-token",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="devices_revoke_auth_token",
)
async def devices_revoke_auth_token(
    customer_id: uuid.UUID, uow: UnitOfWorkDep, actor: WriterDep
) -> Response:
    """Revoke the customer's auth token at once."""
    await tokens.revoke_auth_token(uow, actor, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _customer_of(
    uow: UnitOfWorkDep, principal: PublishableDep, token: str | None
) -> uuid.UUID:
    if token is None:
        raise Unauthenticated("Send the customer's token as X-Customer-Token.")
    return await tokens.customer_for_token(uow, principal.project_id, token)


@me_router.get("", operation_id="me_get")
async def me_get(
    uow: UnitOfWorkDep, principal: PublishableDep, x_customer_token: CustomerToken = None
) -> CustomerRead:
    """The customer the token belongs to."""
    customer_id = await _customer_of(uow, principal, x_customer_token)
    view = await customers_service.get_customer(uow, principal.project_id, customer_id)
    return customer_read(view)


@me_router.put("/devices/{installation_id}", operation_id="me_register_device")
async def me_register_device(
    installation_id: InstallationId,
    body: DeviceRegistration,
    uow: UnitOfWorkDep,
    principal: PublishableDep,
    x_customer_token: CustomerToken = None,
) -> DeviceRead:
    """Register this installation and its push token; with a customer token, link it to them."""
    customer_id = (
        await _customer_of(uow, principal, x_customer_token)
        if x_customer_token is not None
        else None
    )
    actor = actor_for(principal, None)
    device = await service.register_device(
        uow, actor, installation_id, body, customer_id=customer_id
    )
    return _device_read(device)
