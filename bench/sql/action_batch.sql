-- action_batch: what POST /v1/actions/batch sends for a batch of actions, each addressed by
-- the customer_id of a random seeded customer, no external_id, no Idempotency-Key
-- (app/activity/ingest.py: record_batch; the response is built in memory).
-- Variables (-D): project, keyprefix, seeds, payload, full (0|1).
--
-- A template, expanded by bench/scenarios.py for --batch-size (default 100): a line
-- starting with `@each ` is written once per action, `{k}` replaced by 1, 2, ...;
-- `[[fragment]]` becomes the fragment once per action, joined by ", ".
@each \set n{k} random(1, :seeds)
-- Not sent by the API, which reads the customer ids from the request body: the random seeded
-- customers' ids from bench_ids, one autocommit statement (one round trip and one
-- primary-key probe per action more than the API), so the statements below are the API's.
SELECT [[(SELECT id FROM bench_ids WHERE n = :n{k}) AS c{k}]] \gset
\if :full
-- Authentication with the project's settings (app/projects/repository.py:
-- key_with_project), one autocommit statement.
SELECT k.id, k.project_id, k.name, k.kind, k.secret_hash, k.scopes, k.touchpoint, k.allowed_touchpoints, k.expires_at, k.last_used_at, k.revoked_at, p.default_phone_region, p.rules_version, p.identifier_priority, p.subscription_channels FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.prefix = :keyprefix;
\endif
BEGIN;
-- The type's schema version (repository.type_versions).
SELECT action_types.key, action_types.version FROM action_types WHERE action_types.project_id = :project AND action_types.key IN ('bench.purchase');
-- Each action's customer, following merges (customers/views.py: surviving_id), one round
-- trip after the other as the API sends them. (The API skips a customer_id it resolved
-- earlier in the same batch: with the defaults, 100 random ids of 20000, that is ~0.25
-- statements per batch.)
@each SELECT customers.status, customers.merged_into FROM customers WHERE customers.project_id = :project AND customers.id = :c{k};
-- All their rows locked in one statement, in id order (customers/rows.py: lock_active).
SELECT customers.id, customers.project_id, customers.status, customers.merged_into, customers.first_name, customers.last_name, customers.middle_name, customers.birth_date, customers.gender, customers.area, customers.time_zone, customers.custom_fields, customers.version, customers.created_at, customers.updated_at FROM customers WHERE customers.project_id = :project AND customers.id IN ([[:c{k}]]) ORDER BY customers.id FOR UPDATE;
-- The actions (repository.insert_actions): SQLAlchemy hands the rows to asyncpg's
-- executemany, which sends the one-row INSERT once per action, pipelined (Bind/Execute per
-- row, one Sync: one round trip), not a multi-row INSERT. The same here; the ids come from
-- bench_uuid7() (the API sends them).
\startpipeline
@each INSERT INTO actions (id, project_id, customer_id, origin_customer_id, type, occurred_at, received_at, payload, touchpoint, initiator, request_id, external_id) VALUES (bench_uuid7(), :project, :c{k}, :c{k}, 'bench.purchase', now(), now(), :payload::jsonb, 'admin', 'admin', 'pgbench', NULL);
\endpipeline
COMMIT;
