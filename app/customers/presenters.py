"""Domain results to response bodies (never ORM objects in responses)."""

from app.customers.identify import IdentifyOutcome
from app.customers.schemas import CustomerRead, IdentifiersRead, IdentifyResponse, ProfileRead
from app.customers.views import CustomerView
from app.identity import kinds


def customer_read(view: CustomerView) -> CustomerRead:
    customer = view.customer
    identifiers = IdentifiersRead(email=None, phone=None, discount_cards=[], external={})
    for row in view.identifiers:
        if row.kind == kinds.EMAIL:
            identifiers.email = row.value
        elif row.kind == kinds.PHONE:
            identifiers.phone = row.value
        elif row.kind == kinds.DISCOUNT_CARD:
            identifiers.discount_cards.append(row.value)
        elif kinds.is_external(row.kind):
            identifiers.external[kinds.external_field(row.kind)] = row.value
    return CustomerRead(
        id=customer.id,
        status=customer.status,
        version=customer.version,
        identifiers=identifiers,
        profile=ProfileRead(
            first_name=customer.first_name,
            last_name=customer.last_name,
            middle_name=customer.middle_name,
            birth_date=customer.birth_date,
            gender=customer.gender,
            area=customer.area,
            time_zone=customer.time_zone,
            custom_fields=customer.custom_fields or {},
        ),
        merged_ids=view.merged_ids,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def identify_response(outcome: IdentifyOutcome) -> IdentifyResponse:
    return IdentifyResponse(
        result=outcome.result,
        matched_by=outcome.matched_by,
        merged_ids=outcome.merged_ids,
        ignored_identifiers=outcome.ignored,
        customer=customer_read(outcome.view),
    )
