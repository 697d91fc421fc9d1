"""Every domain's tables, imported in one place so Alembic and the tests see the whole schema."""


def import_all_models() -> None:
    # Imported for their side effect of registering tables on Base.metadata.
    import app.activity.models
    import app.changelog.models
    import app.core.idempotency
    import app.customers.models
    import app.devices.models
    import app.fields.models
    import app.identity.models
    import app.imports.models
    import app.jobs.models
    import app.loyalty.models
    import app.projects.models
    import app.promotions.models
    import app.segments.models
    import app.subscriptions.models  # noqa: F401
