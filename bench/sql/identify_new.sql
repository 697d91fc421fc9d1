-- identify_new: what POST /v1/customers/identify sends for an email nobody has
-- (app/customers/identify.py: _identify -> _create; the response is built in memory).
-- Variables (-D): project, keyid, keyprefix, prefix (new per measurement), full (0|1).
\set n random(1, 1000000000000)
\if :full
-- Authentication with the project's settings (app/projects/repository.py:
-- key_with_project), one autocommit statement.
SELECT k.id, k.project_id, k.name, k.kind, k.secret_hash, k.scopes, k.touchpoint, k.allowed_touchpoints, k.expires_at, k.last_used_at, k.revoked_at, p.default_phone_region, p.rules_version, p.identifier_priority, p.subscription_channels FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.prefix = :keyprefix;
\endif
BEGIN;
SELECT pg_advisory_xact_lock(k) FROM unnest(ARRAY[hashtextextended('identifier' || :project::text || 'email' || :prefix::text || :n::text || '@bench.example', 0)]) AS k;
SELECT i.kind, i.value, i.customer_id FROM customer_identifiers i JOIN unnest(ARRAY['email'], ARRAY[:prefix::text || :n::text || '@bench.example']) AS wanted(kind, value) ON i.kind = wanted.kind AND i.value = wanted.value WHERE i.project_id = :project;
INSERT INTO customers (id, project_id, status, merged_into, first_name, last_name, middle_name, birth_date, gender, area, time_zone, custom_fields, version, created_at, updated_at) VALUES (bench_uuid7(), :project, 'active', NULL, 'Bench', NULL, NULL, NULL, NULL, NULL, NULL, '{}'::jsonb, 1, now(), now()) RETURNING id AS cid \gset
INSERT INTO customer_identifiers (id, project_id, customer_id, kind, value, touchpoint) VALUES (bench_uuid7(), :project, :cid, 'email', :prefix::text || :n::text || '@bench.example', 'admin');
INSERT INTO identifier_history (id, project_id, customer_id, event, kind, value, replaced_by, other_customer_id, touchpoint, initiator, request_id) VALUES (bench_uuid7(), :project, :cid, 'added', 'email', :prefix::text || :n::text || '@bench.example', NULL, NULL, 'admin', 'admin', 'pgbench');
INSERT INTO profile_changelog (id, project_id, customer_id, operation, field, old_value, new_value, touchpoint, initiator, initiator_key_id, request_id) VALUES (bench_uuid7(), :project, :cid, 'create', 'first_name', NULL, '"Bench"'::jsonb, 'admin', 'admin', :keyid, 'pgbench'), (bench_uuid7(), :project, :cid, 'identifier_added', 'email', NULL, to_jsonb(:prefix::text || :n::text || '@bench.example'), 'admin', 'admin', :keyid, 'pgbench');
COMMIT;
