-- lookup_email: what GET /v1/customers/lookup?email=... sends
-- (app/customers/service.py: lookup_customer), one transaction.
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
SELECT kind, value, customer_id FROM customer_identifiers WHERE project_id = :project AND (kind, value) IN (('email', 'seed' || :i::text || '@bench.example')) \gset o_
SELECT * FROM customers WHERE project_id = :project AND id = :o_customer_id;
SELECT * FROM customer_identifiers WHERE project_id = :project AND customer_id IN (:o_customer_id) ORDER BY id;
SELECT id, merged_into FROM customers WHERE project_id = :project AND merged_into IN (:o_customer_id) ORDER BY id;
COMMIT;
