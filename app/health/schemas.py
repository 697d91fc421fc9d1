"""Bodies of the health endpoints."""

from typing import Literal

from pydantic import BaseModel

from app.core.schema_names import RESPONSE_MODEL_CONFIG


class Liveness(BaseModel):
    model_config = RESPONSE_MODEL_CONFIG

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    model_config = RESPONSE_MODEL_CONFIG

    status: Literal["ready"] = "ready"
    migration: str
