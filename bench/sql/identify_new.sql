-- identify_new: what POST /v1/customers/identify sends for an email nobody has
-- (app/customers/identify.py: _identify -> _create -> view_of), one transaction.
-- Variables (-D): project, keyid, keyprefix, prefix (new per measurement), full (0|1).
\set n random(1, 1000000000000)
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
SELECT pg_advisory_xact_lock(hashtextextended('identifier' || :project::text || 'email' || :prefix::text || :n::text || '@bench.example', 0));
SELECT kind, value, customer_id FROM customer_identifiers WHERE project_id = :project AND (kind, value) IN (('email', :prefix::text || :n::text || '@bench.example'));
INSERT INTO customers (id, project_id, status, merged_into, first_name, custom_fields, version, created_at, updated_at) VALUES (bench_uuid7(), :project, 'active', NULL, 'Bench', '{}'::jsonb, 1, now(), now()) RETURNING id AS cid \gset
INSERT INTO customer_identifiers (id, project_id, customer_id, kind, value, touchpoint) VALUES (bench_uuid7(), :project, :cid, 'email', :prefix::text || :n::text || '@bench.example', 'admin');
INSERT INTO identifier_history (id, project_id, customer_id, event, kind, value, replaced_by, other_customer_id, touchpoint, initiator, request_id) VALUES (bench_uuid7(), :project, :cid, 'added', 'email', :prefix::text || :n::text || '@bench.example', NULL, NULL, 'admin', 'admin', 'pgbench');
INSERT INTO profile_changelog (id, project_id, customer_id, operation, field, old_value, new_value, touchpoint, initiator, initiator_key_id, request_id) VALUES (bench_uuid7(), :project, :cid, 'create', 'first_name', NULL, '"Bench"'::jsonb, 'admin', 'admin', :keyid, 'pgbench'), (bench_uuid7(), :project, :cid, 'identifier_added', 'email', NULL, to_jsonb(:prefix::text || :n::text || '@bench.example'), 'admin', 'admin', :keyid, 'pgbench');
SELECT * FROM customer_identifiers WHERE project_id = :project AND customer_id IN (:cid) ORDER BY id;
SELECT id, merged_into FROM customers WHERE project_id = :project AND merged_into IN (:cid) ORDER BY id;
COMMIT;
