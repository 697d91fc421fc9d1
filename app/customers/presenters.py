"""Domain results to response bodies (never ORM objects in responses)."""

from app.customers.identify import IdentifyOutcome
from app.customers.schemas import (
    AuthTokenRead,
    CustomerRead,
    FilledFieldRead,
    IdentifiersRead,
    IdentifyResponse,
    MergedIdentifierRead,
    MergeRead,
    ProfileRead,
)
from app.customers.views import CustomerView
from app.identity import kinds
from app.identity.merge import MergeResult


def customer_read(view: CustomerView) -> CustomerRead:
    identifiers = IdentifiersRead(email=None, phone=None, discount_cards=[], external={})
    for ref in view.identifiers:
        if ref.kind == kinds.EMAIL:
            identifiers.email = ref.value
        elif ref.kind == kinds.PHONE:
            identifiers.phone = ref.value
        elif ref.kind == kinds.DISCOUNT_CARD:
            identifiers.discount_cards.append(ref.value)
        elif kinds.is_external(ref.kind):
            identifiers.external[kinds.external_field(ref.kind)] = ref.value
    return CustomerRead(
        id=view.id,
        status=view.status,
        version=view.version,
        identifiers=identifiers,
        profile=ProfileRead(
            first_name=view.first_name,
            last_name=view.last_name,
            middle_name=view.middle_name,
            birth_date=view.birth_date,
            gender=view.gender,
            area=view.area,
            time_zone=view.time_zone,
            custom_fields=view.custom_fields,
        ),
        merged_ids=view.merged_ids,
        auth_token=(
            AuthTokenRead(
                fingerprint=view.auth_token.fingerprint, issued_at=view.auth_token.issued_at
            )
            if view.auth_token is not None
            else None
        ),
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def identify_response(outcome: IdentifyOutcome) -> IdentifyResponse:
    return IdentifyResponse(
        dry_run=outcome.dry_run,
        result=outcome.result,
        matched_by=outcome.matched_by,
        merged_ids=outcome.merged_ids,
        ignored_identifiers=outcome.ignored,
        customer=customer_read(outcome.view),
    )


def merge_read(result: MergeResult, survivor: CustomerView, *, dry_run: bool) -> MergeRead:
    moved: list[MergedIdentifierRead] = []
    clashed: list[MergedIdentifierRead] = []
    filled: list[FilledFieldRead] = []
    for source in result.sources:
        details = result.details_of(source.id)
        moved += [
            MergedIdentifierRead(from_customer=source.id, **item)
            for item in details.get("identifiers_moved", [])
        ]
        clashed += [
            MergedIdentifierRead(from_customer=source.id, **item)
            for item in details.get("identifiers_clashed", [])
        ]
        filled += [
            FilledFieldRead(field=item["field"], value=item["value"], from_customer=source.id)
            for item in details.get("fields_filled", [])
        ]
    return MergeRead(
        dry_run=dry_run,
        survivor=customer_read(survivor),
        merged_ids=[s.id for s in result.sources],
        identifiers_moved=moved,
        identifiers_clashed=clashed,
        fields_filled=filled,
        counts={report.domain: report.counts for report in result.reports},
    )
