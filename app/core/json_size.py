"""The size of a client's free-form JSON (action payloads, payload schemas, prize
details), and the one rule on its numbers that the size check brings."""

from typing import Any

import orjson


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON.

    ValueError (a 422 when raised in a validator) for an integer beyond 64 bits: the
    service serializes with orjson, which cannot write one, and most clients' JSON
    parsers could not read it back either."""
    try:
        return len(orjson.dumps(value))
    except TypeError as error:  # orjson's "Integer exceeds 64-bit range"
        raise ValueError(f"numbers must fit in 64 bits ({error})") from None
