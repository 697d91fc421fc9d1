"""One CSV record -> the same identify request the API reads, or the reasons it cannot be.

A row is validated by the API's own models and rules (`CustomerIdentify`, `read_request`),
so a value refused by `POST /v1/customers/identify` is refused here with the same message.
An empty cell means "not given": it never clears a value.
"""

import csv
import io
import pickle
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from app.core.errors import InvalidInput
from app.core.problems import json_pointer
from app.customers.identify import IdentifyRequest, read_request
from app.customers.inputs import NewProfile, ProjectRules, apply_profile
from app.customers.schemas import CustomerIdentify
from app.fields.values import FieldType
from app.imports.columns import ColumnPlan, SubscriptionColumn

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


@dataclass(frozen=True)
class RowProblem:
    column: str
    message: str


@dataclass
class ParsedRow:
    """A parsed record, as the parsing process sends it back: compact to pickle, because
    unpickling rich objects for every row would cost the importing process more than the
    database work. The full request travels pickled and is opened only for the rows that
    need it (updates and rows identify applies); new customers need only what is below."""

    number: int
    cells: list[str]
    problems: list[RowProblem] = field(default_factory=list)
    # The row's identifiers as (kind, value), normalised; empty if the row was refused.
    refs: tuple[tuple[str, str], ...] = ()
    # Subscriptions (or a customer id) make identify apply the row, one by one.
    needs_identify: bool = False
    request_blob: bytes | None = None
    # The subscription columns the row filled, in the order of its decisions.
    subscription_headers: list[str] = field(default_factory=list)
    # What the row writes if it creates a customer, worked out here (in the parsing
    # process) by the same apply_profile as identify: the profile, and its changes as
    # (field, old JSON, new JSON).
    new_profile: NewProfile | None = None
    create_changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.request_blob is not None

    @property
    def request(self) -> IdentifyRequest:
        """The row's identify request (only for a usable row)."""
        if self.request_blob is None:
            raise ValueError(f"row {self.number} was refused; it has no request")
        cached = self.__dict__.get("_request")
        if cached is None:
            # Our own parsing process pickled it; nothing else writes these bytes.
            cached = pickle.loads(self.request_blob)  # noqa: S301
            self.__dict__["_request"] = cached
        request: IdentifyRequest = cached
        return request

    @property
    def original(self) -> str:
        """The record as CSV text, for the error report."""
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(self.cells)
        return out.getvalue()


def parse_row(
    number: int, cells: list[str], plan: ColumnPlan, rules: ProjectRules, list_separator: str
) -> ParsedRow:
    row = ParsedRow(number, cells)
    if len(cells) != plan.width:
        row.problems.append(RowProblem("", f"expected {plan.width} columns, found {len(cells)}"))
        return row
    subscriptions = [s for s in plan.subscriptions if _cell(cells, s.column.index)]
    row.subscription_headers = [s.column.header for s in subscriptions]
    body = _body(cells, plan, list_separator, subscriptions)
    try:
        identify = CustomerIdentify.model_validate(body)
        request = read_request(identify, rules, allow_customer_id=False)
        row.new_profile = NewProfile()
        row.create_changes = [
            (c.field, json_text(c.old_value), json_text(c.new_value))
            for c in apply_profile(row.new_profile, request.profile)
        ]
        row.refs = tuple((ref.kind, ref.value) for ref in request.refs)
        row.needs_identify = bool(request.subscriptions) or request.customer_id is not None
        row.request_blob = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
    except ValidationError as invalid:
        for error in invalid.errors(include_url=False):
            pointer = json_pointer([str(part) for part in error["loc"]])
            row.problems.append(RowProblem(column_of(plan, row, pointer), str(error["msg"])))
    except InvalidInput as invalid:
        for problem in invalid.errors or []:
            column = column_of(plan, row, problem.pointer)
            message = problem.message if column or not invalid.detail else invalid.detail
            row.problems.append(RowProblem(column, message))
        if not invalid.errors:
            row.problems.append(RowProblem("", invalid.detail))
    return row


def json_text(value: Any) -> str | None:
    """A JSON column's value as text (asyncpg's jsonb codec takes text); None is NULL."""
    return None if value is None else orjson.dumps(value).decode()


def _cell(cells: list[str], index: int) -> str | None:
    value = cells[index].strip()
    return value or None


def _body(
    cells: list[str],
    plan: ColumnPlan,
    list_separator: str,
    subscriptions: list[SubscriptionColumn],
) -> dict[str, Any]:
    identifiers: dict[str, Any] = {}
    if plan.email is not None and (email := _cell(cells, plan.email.index)):
        identifiers["email"] = email
    if plan.phone is not None and (phone := _cell(cells, plan.phone.index)):
        identifiers["phone"] = phone
    if plan.cards is not None and (cards := _cell(cells, plan.cards.index)):
        identifiers["discount_cards"] = [
            card.strip() for card in cards.split(list_separator) if card.strip()
        ]
    external = {c.key: v for c in plan.external if (v := _cell(cells, c.index))}
    if external:
        identifiers["external"] = external
    profile: dict[str, Any] = {c.target: v for c in plan.profile if (v := _cell(cells, c.index))}
    custom = {
        c.key: _typed(plan.custom_types[c.key], v)
        for c in plan.custom
        if (v := _cell(cells, c.index))
    }
    if custom:
        profile["custom_fields"] = custom
    body: dict[str, Any] = {"identifiers": identifiers, "profile": profile}
    if subscriptions:
        body["subscriptions"] = [
            {"channel": s.channel, "topic": s.topic, "status": _cell(cells, s.column.index)}
            for s in subscriptions
        ]
    return body


def _typed(field_type: FieldType, text: str) -> Any:
    """A cell as the JSON value its field type takes; anything else is left as text, so the
    field's own validation refuses it with its usual message."""
    if field_type is FieldType.INTEGER and _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if field_type is FieldType.BOOLEAN:
        return _BOOLEANS.get(text.lower(), text)
    return text


def column_of(plan: ColumnPlan, row: ParsedRow, pointer: str) -> str:
    """The header of the cell a problem at this request pointer came from ("" for the row)."""
    if pointer.startswith("/subscriptions/"):
        index = pointer.split("/")[2]
        if index.isdigit() and int(index) < len(row.subscription_headers):
            return row.subscription_headers[int(index)]
        return ""
    return plan.column_of_pointer(pointer)
