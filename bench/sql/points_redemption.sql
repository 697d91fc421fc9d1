-- points_redemption: what POST /v1/customers/{id}/points/transactions sends for a
-- redemption of 1 point with a new Idempotency-Key, from one of the first :rich seeded
-- customers (each given one large accrual during setup: one lot, always enough).
-- Variables (-D): project, keyid, keyprefix, rich, prefix (new per measurement),
-- fingerprint, txresponse, full (0|1).
\set i random(1, :rich)
\set n random(1, 1000000000000)
\if :full
-- Authentication with the project's settings (app/projects/repository.py:
-- key_with_project), one autocommit statement.
SELECT k.id, k.project_id, k.name, k.kind, k.secret_hash, k.scopes, k.touchpoint, k.allowed_touchpoints, k.expires_at, k.last_used_at, k.revoked_at, p.default_phone_region, p.rules_version, p.identifier_priority, p.subscription_channels FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.prefix = :keyprefix;
\endif
BEGIN;
INSERT INTO idempotency_keys (id, project_id, operation, key, fingerprint) VALUES (bench_uuid7(), :project, 'loyalty_create_transaction', :prefix::text || :n::text, :fingerprint) ON CONFLICT DO NOTHING RETURNING idempotency_keys.id;
SELECT point_accounts.id AS acc, point_accounts.project_id, point_accounts.code, point_accounts.name, point_accounts.precision, point_accounts.lifetime_days, point_accounts.created_at FROM point_accounts WHERE point_accounts.project_id = :project AND point_accounts.code = 'bench' \gset
SELECT c.status, c.merged_into, c.id AS cid, bench_uuid7() AS tid FROM customers c WHERE c.project_id = :project AND c.id = (SELECT id FROM bench_ids WHERE n = :i) \gset
SELECT customers.id, customers.project_id, customers.status, customers.merged_into, customers.first_name, customers.last_name, customers.middle_name, customers.birth_date, customers.gender, customers.area, customers.time_zone, customers.custom_fields, customers.version, customers.created_at, customers.updated_at FROM customers WHERE customers.project_id = :project AND customers.id IN (:cid) ORDER BY customers.id FOR UPDATE;
INSERT INTO point_balances (id, project_id, customer_id, account_id, updated_at) VALUES (bench_uuid7(), :project, :cid, :acc, now()) ON CONFLICT DO NOTHING;
SELECT point_balances.id AS bid, point_balances.project_id, point_balances.customer_id, point_balances.account_id, point_balances.available, point_balances.pending, point_balances.earned, point_balances.spent, point_balances.expired, point_balances.updated_at FROM point_balances WHERE point_balances.project_id = :project AND point_balances.customer_id = :cid AND point_balances.account_id = :acc FOR UPDATE \gset
SELECT point_lots.id, point_lots.project_id, point_lots.customer_id, point_lots.account_id, point_lots.amount, point_lots.remaining, point_lots.available_at, point_lots.expires_at, point_lots.released FROM point_lots WHERE point_lots.customer_id = :cid AND point_lots.account_id = :acc AND (point_lots.released IS false AND point_lots.available_at <= now() OR point_lots.remaining > 0 AND point_lots.expires_at <= now()) ORDER BY point_lots.expires_at ASC NULLS LAST, point_lots.id FOR UPDATE;
INSERT INTO point_transactions (id, project_id, customer_id, origin_customer_id, account_id, type, amount, reason, reference, available_at, expires_at, reverses_id, touchpoint, initiator, request_id, created_at) VALUES (:tid, :project, :cid, :cid, :acc, 'redemption', -1, NULL, :prefix::text || :n::text, now(), NULL, NULL, 'admin', 'admin', 'pgbench', now());
-- The lots to spend from, soonest to expire first (one here), spent and recorded.
SELECT point_lots.id AS lot, point_lots.project_id, point_lots.customer_id, point_lots.account_id, point_lots.amount, point_lots.remaining, point_lots.available_at, point_lots.expires_at, point_lots.released FROM point_lots WHERE point_lots.customer_id = :cid AND point_lots.account_id = :acc AND point_lots.released IS true AND point_lots.remaining > 0 ORDER BY point_lots.expires_at ASC NULLS LAST, point_lots.id FOR UPDATE \gset
UPDATE point_lots SET remaining = remaining - 1 WHERE point_lots.id = :lot;
INSERT INTO point_spends (transaction_id, lot_id, amount) VALUES (:tid, :lot, 1);
UPDATE point_balances SET available = available - 1, spent = spent + 1, updated_at = now() WHERE point_balances.id = :bid;
INSERT INTO profile_changelog (id, project_id, customer_id, operation, field, old_value, new_value, touchpoint, initiator, initiator_key_id, request_id) VALUES (bench_uuid7(), :project, :cid, 'points', 'points.bench', NULL, jsonb_build_object('type', 'redemption', 'amount', '-1', 'transaction_id', :tid::text), 'admin', 'admin', :keyid, 'pgbench');
UPDATE idempotency_keys SET status_code = 201, response = :txresponse::json WHERE idempotency_keys.project_id = :project AND idempotency_keys.operation = 'loyalty_create_transaction' AND idempotency_keys.key = :prefix::text || :n::text;
COMMIT;
