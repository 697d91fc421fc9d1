"""Request and response bodies of devices, customer auth tokens and the /v1/me routes."""

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from app.core.schema_names import SchemaName

DeviceKind = Annotated[Literal["mobile_app", "web_push"], SchemaName("DeviceKind")]
Platform = Annotated[Literal["ios", "android", "huawei", "web"], SchemaName("Platform")]
PushProvider = Annotated[Literal["apns", "fcm", "hms", "webpush"], SchemaName("PushProvider")]

INSTALLATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# Provider tokens: APNs hex, FCM/HMS base64url-ish with ':' and '-'. No spaces, no URLs.
PROVIDER_TOKEN_PATTERN = r"^[A-Za-z0-9_:.\-]{16,1024}$"  # noqa: S105 (a pattern)
# A P-256 public key, uncompressed (65 bytes), and the 16-byte auth secret of RFC 8291.
P256DH_BYTES = 65
AUTH_SECRET_BYTES = 16
_PROVIDERS_BY_PLATFORM: dict[str, set[str]] = {
    "ios": {"apns", "fcm"},
    "android": {"fcm"},
    "huawei": {"hms", "fcm"},
    "web": {"webpush"},
}


# Free text an app reports about itself: PostgreSQL text cannot hold a NUL (it was a 500,
# found by the spec fuzzing), so it is refused as invalid input.
NO_NUL = r"^[^\x00]*$"


def _base64url_bytes(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


class WebPushSubscription(BaseModel):
    """A browser's PushSubscription (endpoint and keys), as the Push API gives it."""

    model_config = ConfigDict(extra="forbid")

    endpoint: Annotated[HttpUrl, Field(max_length=2048)]
    p256dh: Annotated[str, Field(min_length=80, max_length=100)]
    auth: Annotated[str, Field(min_length=16, max_length=32)]

    @model_validator(mode="after")
    def _keys_decode(self) -> Self:
        if self.endpoint.scheme != "https":
            raise ValueError("endpoint must be https")
        p256dh = _base64url_bytes(self.p256dh)
        if len(p256dh) != P256DH_BYTES or p256dh[0] != 4:
            raise ValueError("p256dh must be an uncompressed P-256 public key (65 bytes)")
        if len(_base64url_bytes(self.auth)) != AUTH_SECRET_BYTES:
            raise ValueError("auth must be a 16-byte secret")
        return self


class DeviceRegistration(BaseModel):
    """A PUT of a device: everything the app knows about itself."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "mobile_app",
                    "app_id": "com.acme.shop",
                    "platform": "ios",
                    "push_provider": "apns",
                    "push_token": "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78"
                    "ad",
                    "app_version": "5.2.0",
                    "os_version": "18.1",
                    "locale": "de-DE",
                }
            ]
        },
    )

    kind: DeviceKind
    app_id: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
    platform: Platform
    push_provider: PushProvider | None = None
    push_token: Annotated[str, Field(pattern=PROVIDER_TOKEN_PATTERN)] | None = Field(
        default=None, description="APNs, FCM or HMS token; for web push use `web_push`."
    )
    web_push: WebPushSubscription | None = None
    push_enabled: bool = True
    app_version: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None
    os_version: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None
    locale: (
        Annotated[str, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]
        | None
    ) = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        web = self.platform == "web"
        if (self.kind == "web_push") != web:
            raise ValueError("kind web_push goes with platform web, mobile_app with the others")
        if (
            self.push_provider is not None
            and self.push_provider not in _PROVIDERS_BY_PLATFORM[self.platform]
        ):
            raise ValueError(f"push_provider {self.push_provider} does not serve {self.platform}")
        if web and self.push_token is not None:
            raise ValueError("a browser sends its subscription in web_push, not push_token")
        if not web and self.web_push is not None:
            raise ValueError("web_push is for browsers")
        if (
            self.push_token is not None or self.web_push is not None
        ) and self.push_provider is None:
            raise ValueError("a push token needs its push_provider")
        return self

    def token(self) -> str | None:
        """The value that identifies the push channel: provider token or web-push endpoint."""
        if self.web_push is not None:
            return str(self.web_push.endpoint)
        return self.push_token


class DevicePatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"push_enabled": False}]}
    )

    push_enabled: bool = Field(description="false: the provider reported the token invalid.")


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: DeviceKind
    installation_id: str
    app_id: str
    platform: Platform
    push_provider: PushProvider | None
    push_token: str | None = Field(description="Provider token, or the web-push endpoint.")
    push_enabled: bool
    app_version: str | None
    os_version: str | None
    locale: str | None
    first_seen_at: datetime
    last_seen_at: datetime


class CustomerDeviceRead(DeviceRead):
    """A device as one customer's: when this customer was first and last seen on it."""

    linked_first_seen_at: datetime
    linked_last_seen_at: datetime
    shared_with: int = Field(description="How many other customers use this device.")


class DeviceCustomerRead(BaseModel):
    customer_id: uuid.UUID
    first_seen_at: datetime
    last_seen_at: datetime


class AuthTokenIssued(BaseModel):
    token: str = Field(description="Shown only in this response; give it to the app now.")
    fingerprint: str
    issued_at: datetime
