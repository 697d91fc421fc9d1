-- action_single: what POST /v1/actions sends for one action addressed by customer_id, with
-- an external_id, no Idempotency-Key (app/activity/ingest.py: record_action; the type's
-- validator is cached, so only its version is read; the response is built in memory).
-- Variables (-D): project, keyprefix, seeds, prefix (new per measurement), payload, full (0|1).
\set i random(1, :seeds)
\set n random(1, 1000000000000)
\if :full
-- Authentication with the project's settings (app/projects/repository.py:
-- key_with_project), one autocommit statement.
SELECT k.id, k.project_id, k.name, k.kind, k.secret_hash, k.scopes, k.touchpoint, k.allowed_touchpoints, k.expires_at, k.last_used_at, k.revoked_at, p.default_phone_region, p.rules_version, p.identifier_priority, p.subscription_channels FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.prefix = :keyprefix;
\endif
BEGIN;
-- The type's schema version (repository.type_versions).
SELECT action_types.key, action_types.version FROM action_types WHERE action_types.project_id = :project AND action_types.key IN ('bench.purchase');
-- The customer, following merges (customers/views.py: surviving_id). The random seeded id
-- comes from bench_ids in a subquery (one extra primary-key probe); the statement also
-- hands pgbench the customer's id and a new action id (the API has both in memory).
SELECT c.status, c.merged_into, c.id AS cid, bench_uuid7() AS aid FROM customers c WHERE c.project_id = :project AND c.id = (SELECT id FROM bench_ids WHERE n = :i) \gset
-- Its row locked (customers/rows.py: lock_active).
SELECT customers.id, customers.project_id, customers.status, customers.merged_into, customers.first_name, customers.last_name, customers.middle_name, customers.birth_date, customers.gender, customers.area, customers.time_zone, customers.custom_fields, customers.version, customers.created_at, customers.updated_at FROM customers WHERE customers.project_id = :project AND customers.id IN (:cid) ORDER BY customers.id FOR UPDATE;
-- The external id claimed, then the action (repository.claim_external_ids, insert_actions).
INSERT INTO action_external_ids (project_id, external_id, action_id, occurred_at) VALUES (:project, :prefix::text || :n::text, :aid, now()) ON CONFLICT (project_id, external_id) DO NOTHING RETURNING action_external_ids.external_id;
INSERT INTO actions (id, project_id, customer_id, origin_customer_id, type, occurred_at, received_at, payload, touchpoint, initiator, request_id, external_id) VALUES (:aid, :project, :cid, :cid, 'bench.purchase', now(), now(), :payload::jsonb, 'admin', 'admin', 'pgbench', :prefix::text || :n::text);
COMMIT;
