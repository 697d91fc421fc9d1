"""The segment rule language: JSON, checked when saved, compiled to one SQL condition.

A rule is a condition over one customer (the `customers` row of the outer query):

    {"all": [rule, ...]}  {"any": [rule, ...]}  {"not": rule}
    {"profile": "first_name", "op": "eq", "value": "Ann"}
    {"custom_field": "tier", "op": "in", "value": ["gold", "silver"]}
    {"identifier": "email", "op": "exists"}
    {"subscription": {"channel": "email", "topic": "news"}, "status": "subscribed"}
    {"points": "bonus", "op": "gte", "value": 100}
    {"action": "purchase", "count": {"op": "gte", "value": 2}, "within_days": 30}
    {"device": "mobile_app", "op": "exists"}
    {"in_segment": {"segmentation": "rfm", "segment": "champions"}}

Everything is checked against the project (field types, accounts, action types,
segments) when the rule is saved, so recalculation never meets an invalid rule. The
compiled condition reads other domains' tables in correlated subqueries: one set-based
query per segmentation, no loop over customers.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Numeric, and_, cast, exists, false, func, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.activity.models import Action
from app.core.errors import FieldError, InvalidInput
from app.customers.models import Customer
from app.devices.models import CustomerDevice, Device
from app.fields.values import FieldDefinitions, FieldType
from app.identity import kinds
from app.identity.models import CustomerIdentifier
from app.loyalty.models import PointBalance
from app.segments.models import SegmentMembership
from app.subscriptions.models import NO_TOPIC, Subscription

MAX_DEPTH = 8
MAX_CONDITIONS = 200
TEXT_FIELDS = ("first_name", "last_name", "middle_name", "gender", "area", "time_zone")
TEXT_OPS = frozenset(
    {"eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists"}
)
ORDER_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "exists", "not_exists"})
COUNT_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte"})
CHANNELS = ("email", "sms", "mobile_push", "web_push", "messenger")
STATUSES = ("subscribed", "unsubscribed", "pending")


@dataclass(frozen=True)
class RuleContext:
    """What a rule may name, read from the project when the rule is saved or run."""

    project_id: uuid.UUID
    fields: FieldDefinitions
    point_accounts: Mapping[str, uuid.UUID]
    action_types: frozenset[str]
    segments: Mapping[tuple[str, str], uuid.UUID]
    now: datetime


@dataclass
class _Compiler:
    context: RuleContext
    errors: list[FieldError] = field(default_factory=list)
    conditions: int = 0

    def fail(self, pointer: str, message: str) -> ColumnElement[bool]:
        self.errors.append(FieldError(pointer=pointer, message=message))
        return false()

    def compile(self, rule: Any, pointer: str, depth: int = 0) -> ColumnElement[bool]:
        self.conditions += 1
        if depth > MAX_DEPTH or self.conditions > MAX_CONDITIONS:
            return self.fail(
                pointer, f"Rules nest at most {MAX_DEPTH} deep, {MAX_CONDITIONS} conditions"
            )
        if not isinstance(rule, dict) or len(rule) == 0:
            return self.fail(pointer, "A rule is a JSON object")
        for combinator in ("all", "any"):
            if combinator in rule:
                return self._combine(combinator, rule, pointer, depth)
        if "not" in rule:
            if set(rule) != {"not"}:
                return self.fail(pointer, "`not` stands alone")
            return not_(self.compile(rule["not"], f"{pointer}/not", depth + 1))
        for kind, method in (
            ("profile", self._profile),
            ("custom_field", self._custom_field),
            ("identifier", self._identifier),
            ("subscription", self._subscription),
            ("points", self._points),
            ("action", self._action),
            ("device", self._device),
            ("in_segment", self._in_segment),
        ):
            if kind in rule:
                return method(rule, pointer)
        return self.fail(pointer, f"Unknown condition {sorted(rule)}")

    def _combine(
        self, combinator: str, rule: dict[str, Any], pointer: str, depth: int
    ) -> ColumnElement[bool]:
        parts = rule[combinator]
        if set(rule) != {combinator} or not isinstance(parts, list) or not parts:
            return self.fail(pointer, f"`{combinator}` takes a non-empty list of rules, alone")
        compiled = [
            self.compile(p, f"{pointer}/{combinator}/{i}", depth + 1) for i, p in enumerate(parts)
        ]
        return and_(*compiled) if combinator == "all" else or_(*compiled)

    def _keys(self, rule: dict[str, Any], pointer: str, allowed: set[str]) -> bool:
        extra = set(rule) - allowed
        if extra:
            self.fail(pointer, f"Unexpected keys {sorted(extra)}")
            return False
        return True

    def _profile(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"profile", "op", "value"}):
            return false()
        name = rule["profile"]
        if name in TEXT_FIELDS:
            return self._text(getattr(Customer, name), rule, pointer)
        if name == "birth_date":
            return self._ordered(Customer.birth_date, rule, pointer, _as_date)
        if name == "created_at":
            return self._ordered(Customer.created_at, rule, pointer, _as_datetime)
        return self.fail(f"{pointer}/profile", f"Unknown profile field {name!r}")

    def _custom_field(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"custom_field", "op", "value"}):
            return false()
        key = rule["custom_field"]
        definition = self.context.fields.get(key) if isinstance(key, str) else None
        if definition is None or definition.type == FieldType.UNIQUE_ID:
            return self.fail(f"{pointer}/custom_field", f"No custom field {key!r} to compare")
        text_value = Customer.custom_fields[key].astext
        if definition.type in (FieldType.STRING, FieldType.ENUM):
            return self._text(text_value, rule, pointer)
        if definition.type in (FieldType.INTEGER, FieldType.DECIMAL):
            return self._ordered(cast(text_value, Numeric), rule, pointer, _as_number)
        if definition.type == FieldType.BOOLEAN:
            if rule.get("op") != "eq" or not isinstance(rule.get("value"), bool):
                return self.fail(
                    f"{pointer}/value", "A boolean field takes op eq and true or false"
                )
            matches: ColumnElement[bool] = text_value == ("true" if rule["value"] else "false")
            return matches
        # Dates and date-times are stored as ISO strings, which sort like the instants.
        parse = _as_date_text if definition.type == FieldType.DATE else _as_datetime_text
        return self._ordered(text_value, rule, pointer, parse)

    def _text(self, column: Any, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        op, value = rule.get("op"), rule.get("value")
        if op not in TEXT_OPS:
            return self.fail(f"{pointer}/op", f"One of {sorted(TEXT_OPS)}")
        if op in ("exists", "not_exists"):
            return self._presence(column, op, rule, pointer)
        if op in ("in", "not_in"):
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                return self.fail(f"{pointer}/value", "A non-empty list of strings")
            matched = column.in_(value)
            return matched if op == "in" else or_(column.is_(None), not_(matched))
        if not isinstance(value, str):
            return self.fail(f"{pointer}/value", "A string")
        if op == "eq":
            equal: ColumnElement[bool] = column == value
            return equal
        if op == "ne":
            return or_(column.is_(None), column != value)
        if op == "contains":
            return func.strpos(column, value) > 0
        return func.left(column, len(value)) == value

    def _ordered(
        self, column: Any, rule: dict[str, Any], pointer: str, parse: Any
    ) -> ColumnElement[bool]:
        op = rule.get("op")
        if op not in ORDER_OPS:
            return self.fail(f"{pointer}/op", f"One of {sorted(ORDER_OPS)}")
        if op in ("exists", "not_exists"):
            return self._presence(column, op, rule, pointer)
        try:
            value = parse(rule.get("value"))
        except (TypeError, ValueError, InvalidOperation):
            return self.fail(f"{pointer}/value", "Not a value of this field's type")
        return _compare(column, op, value)

    def _presence(
        self, column: Any, op: str, rule: dict[str, Any], pointer: str
    ) -> ColumnElement[bool]:
        if "value" in rule:
            return self.fail(f"{pointer}/value", f"{op} takes no value")
        present: ColumnElement[bool] = column.is_not(None) if op == "exists" else column.is_(None)
        return present

    def _identifier(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"identifier", "op"}):
            return false()
        kind = rule["identifier"]
        known = {
            kinds.EMAIL,
            kinds.PHONE,
            kinds.DISCOUNT_CARD,
            kinds.APP_INSTALLATION,
            kinds.PUSH_TOKEN,
        }
        unique_ids = {
            kinds.external_kind(k)
            for k, d in self.context.fields.items()
            if d.type == FieldType.UNIQUE_ID
        }
        if kind not in known | unique_ids:
            return self.fail(f"{pointer}/identifier", f"Unknown identifier kind {kind!r}")
        if rule.get("op") not in ("exists", "not_exists"):
            return self.fail(f"{pointer}/op", "exists or not_exists")
        held = exists().where(
            CustomerIdentifier.customer_id == Customer.id, CustomerIdentifier.kind == kind
        )
        return held if rule["op"] == "exists" else not_(held)

    def _subscription(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"subscription", "status"}):
            return false()
        target = rule["subscription"]
        if (
            not isinstance(target, dict)
            or target.get("channel") not in CHANNELS
            or set(target) - {"channel", "topic"}
        ):
            return self.fail(
                f"{pointer}/subscription", f"{{channel: one of {list(CHANNELS)}, topic?}}"
            )
        if rule.get("status") not in STATUSES:
            return self.fail(f"{pointer}/status", f"One of {list(STATUSES)}")
        topic = target.get("topic") or NO_TOPIC
        # project_id first: the subqueries must use the (project_id, customer_id, ...) indexes,
        # or each of a million customers costs a scan.
        return exists().where(
            Subscription.project_id == self.context.project_id,
            Subscription.customer_id == Customer.id,
            Subscription.channel == target["channel"],
            Subscription.topic == topic,
            Subscription.status == rule["status"],
        )

    def _points(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"points", "op", "value"}):
            return false()
        account_id = self.context.point_accounts.get(rule["points"])
        if account_id is None:
            return self.fail(f"{pointer}/points", f"No point account {rule['points']!r}")
        if rule.get("op") not in COUNT_OPS:
            return self.fail(f"{pointer}/op", f"One of {sorted(COUNT_OPS)}")
        try:
            value = _as_number(rule.get("value"))
        except (TypeError, ValueError, InvalidOperation):
            return self.fail(f"{pointer}/value", "A number")
        available = (
            select(PointBalance.available)
            .where(
                PointBalance.project_id == self.context.project_id,
                PointBalance.customer_id == Customer.id,
                PointBalance.account_id == account_id,
            )
            .scalar_subquery()
        )
        return _compare(func.coalesce(available, 0), rule["op"], value)

    def _action(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"action", "count", "within_days"}):
            return false()
        if rule["action"] not in self.context.action_types:
            return self.fail(f"{pointer}/action", f"No action type {rule['action']!r}")
        count = rule.get("count")
        if (
            not isinstance(count, dict)
            or count.get("op") not in COUNT_OPS
            or not isinstance(count.get("value"), int)
        ):
            return self.fail(f"{pointer}/count", "{op, value: integer}")
        query = (
            select(func.count())
            .select_from(Action)
            .where(
                Action.project_id == self.context.project_id,
                Action.customer_id == Customer.id,
                Action.type == rule["action"],
            )
        )
        days = rule.get("within_days")
        if days is not None:
            if not isinstance(days, int) or not 0 < days <= 3650:
                return self.fail(f"{pointer}/within_days", "1 to 3650")
            query = query.where(Action.occurred_at >= self.context.now - timedelta(days=days))
        return _compare(query.scalar_subquery(), count["op"], count["value"])

    def _device(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"device", "op", "push_enabled"}):
            return false()
        if rule["device"] not in ("mobile_app", "web_push") or rule.get("op") not in (
            "exists",
            "not_exists",
        ):
            return self.fail(pointer, "{device: mobile_app | web_push, op: exists | not_exists}")
        criteria = [
            CustomerDevice.project_id == self.context.project_id,
            CustomerDevice.customer_id == Customer.id,
            CustomerDevice.device_id == Device.id,
            Device.kind == rule["device"],
        ]
        if "push_enabled" in rule:
            if not isinstance(rule["push_enabled"], bool):
                return self.fail(f"{pointer}/push_enabled", "true or false")
            criteria.append(Device.push_enabled.is_(rule["push_enabled"]))
        used = exists().where(*criteria)
        return used if rule["op"] == "exists" else not_(used)

    def _in_segment(self, rule: dict[str, Any], pointer: str) -> ColumnElement[bool]:
        if not self._keys(rule, pointer, {"in_segment"}):
            return false()
        target = rule["in_segment"]
        if not isinstance(target, dict):
            return self.fail(f"{pointer}/in_segment", "{segmentation, segment}")
        named = (str(target.get("segmentation")), str(target.get("segment")))
        segment_id = self.context.segments.get(named)
        if segment_id is None:
            return self.fail(f"{pointer}/in_segment", "No such segment (of another segmentation)")
        return exists().where(
            SegmentMembership.customer_id == Customer.id, SegmentMembership.segment_id == segment_id
        )


def compile_rule(rule: Any, context: RuleContext, *, pointer: str) -> ColumnElement[bool]:
    """The SQL condition of a rule over `customers`, or a 422 listing every problem."""
    compiler = _Compiler(context)
    condition = compiler.compile(rule, pointer)
    if compiler.errors:
        raise InvalidInput(
            f"{len(compiler.errors)} problem(s) in the rule.", errors=compiler.errors
        )
    return condition


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    comparisons: dict[str, ColumnElement[bool]] = {
        "eq": column == value,
        "ne": column != value,
        "gt": column > value,
        "gte": column >= value,
        "lt": column < value,
        "lte": column <= value,
    }
    return comparisons[op]


def _as_number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("not a number")
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError("not finite")
    return number


def _as_date(value: Any) -> date:
    return date.fromisoformat(str(value))


def _as_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("needs an offset")
    return parsed


def _as_date_text(value: Any) -> str:
    return _as_date(value).isoformat()


def _as_datetime_text(value: Any) -> str:
    return _as_datetime(value).astimezone(UTC).isoformat().replace("+00:00", "Z")
