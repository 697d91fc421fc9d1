-- identify_existing: what POST /v1/customers/identify sends for a seeded email whose
-- profile already matches (app/customers/identify.py: _identify -> _attach_wanted ->
-- view_of; result "unchanged", nothing written), one transaction.
-- Variables (-D): project, keyprefix, seeds, full (0|1).
\set i random(1, :seeds)
\if :full
-- Authentication (app/projects/service.py: authenticate), its own transaction.
BEGIN;
SELECT * FROM api_keys WHERE prefix = :keyprefix;
COMMIT;
\endif
BEGIN;
\if :full
-- The project's rules (app/customers/inputs.py: load_rules).
SELECT * FROM projects WHERE id = :project;
SELECT * FROM identifier_blocklist WHERE project_id = :project ORDER BY id;
SELECT * FROM custom_fields WHERE project_id = :project AND entity = 'customer';
\endif
SELECT pg_advisory_xact_lock(hashtextextended('identifier' || :project::text || 'email' || 'seed' || :i::text || '@bench.example', 0));
-- Who owns the email, then its row locked, then ownership read again.
SELECT kind, value, customer_id FROM customer_identifiers WHERE project_id = :project AND (kind, value) IN (('email', 'seed' || :i::text || '@bench.example')) \gset o_
SELECT * FROM customers WHERE project_id = :project AND id IN (:o_customer_id) ORDER BY id FOR UPDATE;
SELECT kind, value, customer_id FROM customer_identifiers WHERE project_id = :project AND (kind, value) IN (('email', 'seed' || :i::text || '@bench.example'));
-- The identifiers it holds (_attach_wanted), then the response view (view_of).
SELECT * FROM customer_identifiers WHERE project_id = :project AND customer_id IN (:o_customer_id) ORDER BY id;
SELECT * FROM customer_identifiers WHERE project_id = :project AND customer_id IN (:o_customer_id) ORDER BY id;
SELECT id, merged_into FROM customers WHERE project_id = :project AND merged_into IN (:o_customer_id) ORDER BY id;
COMMIT;
