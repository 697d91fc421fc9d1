-- subscription_change: what PUT /v1/customers/{id}/subscriptions sends for one decision
-- on the email channel that changes its status (app/subscriptions/service.py; traced with
-- SQLAlchemy's cursor events). The API inserts the row the first time and updates it
-- after; here one upsert does either (the statement the API sends depends on what it just
-- read). The customer is a random one of seeds :subfirst..:sublast (bench/mix.py: the
-- API's generators change the subscriptions of other customers).
-- Variables (-D): project, keyid, keyprefix, subfirst, sublast, full (0|1).
\set i random(:subfirst, :sublast)
\set s random(0, 1)
\if :full
-- Authentication with the project's settings (app/projects/repository.py:
-- key_with_project), one autocommit statement.
SELECT k.id, k.project_id, k.name, k.kind, k.secret_hash, k.scopes, k.touchpoint, k.allowed_touchpoints, k.expires_at, k.last_used_at, k.revoked_at, p.default_phone_region, p.rules_version, p.identifier_priority, p.subscription_channels FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.prefix = :keyprefix;
\endif
BEGIN;
SELECT c.status, c.merged_into, c.id AS cid, CASE WHEN :s = 1 THEN 'subscribed' ELSE 'unsubscribed' END AS new_status, CASE WHEN :s = 1 THEN 'unsubscribed' ELSE 'subscribed' END AS old_status FROM customers c WHERE c.project_id = :project AND c.id = (SELECT id FROM bench_ids WHERE n = :i) \gset
SELECT customers.id, customers.project_id, customers.status, customers.merged_into, customers.first_name, customers.last_name, customers.middle_name, customers.birth_date, customers.gender, customers.area, customers.time_zone, customers.custom_fields, customers.version, customers.created_at, customers.updated_at FROM customers WHERE customers.project_id = :project AND customers.id IN (:cid) ORDER BY customers.id FOR UPDATE;
-- What the customer has: the current decisions, the identifiers (a way to reach them),
-- push-enabled devices per push channel, the project's topics.
SELECT subscriptions.id, subscriptions.project_id, subscriptions.customer_id, subscriptions.channel, subscriptions.topic, subscriptions.status, subscriptions.source, subscriptions.reason, subscriptions.touchpoint, subscriptions.origin_customer_id, subscriptions.decided_at FROM subscriptions WHERE subscriptions.project_id = :project AND subscriptions.customer_id IN (:cid) ORDER BY subscriptions.channel, subscriptions.topic;
SELECT customer_identifiers.id, customer_identifiers.project_id, customer_identifiers.customer_id, customer_identifiers.kind, customer_identifiers.value, customer_identifiers.touchpoint, customer_identifiers.origin_customer_id, customer_identifiers.created_at FROM customer_identifiers WHERE customer_identifiers.project_id = :project AND customer_identifiers.customer_id IN (:cid) ORDER BY customer_identifiers.id;
SELECT count(*) AS count_1 FROM devices JOIN customer_devices ON customer_devices.device_id = devices.id WHERE customer_devices.project_id = :project AND customer_devices.customer_id = :cid AND devices.kind = 'mobile_app' AND devices.push_enabled IS true AND devices.push_token IS NOT NULL;
SELECT count(*) AS count_1 FROM devices JOIN customer_devices ON customer_devices.device_id = devices.id WHERE customer_devices.project_id = :project AND customer_devices.customer_id = :cid AND devices.kind = 'web_push' AND devices.push_enabled IS true AND devices.push_token IS NOT NULL;
SELECT subscription_topics.id, subscription_topics.project_id, subscription_topics.key, subscription_topics.name, subscription_topics.description, subscription_topics.channels, subscription_topics.created_at FROM subscription_topics WHERE subscription_topics.project_id = :project ORDER BY subscription_topics.key;
-- The decision, its history row, the changelog row, the customer's version.
INSERT INTO subscriptions (id, project_id, customer_id, channel, topic, status, source, reason, touchpoint, origin_customer_id, decided_at) VALUES (bench_uuid7(), :project, :cid, 'email', '', :new_status, 'bench', NULL, 'admin', NULL, now()) ON CONFLICT (project_id, customer_id, channel, topic) DO UPDATE SET status = excluded.status, decided_at = excluded.decided_at;
INSERT INTO subscription_history (id, project_id, customer_id, channel, topic, old_status, new_status, source, reason, touchpoint, initiator, request_id) VALUES (bench_uuid7(), :project, :cid, 'email', '', :old_status, :new_status, 'bench', NULL, 'admin', 'admin', 'pgbench');
INSERT INTO profile_changelog (id, project_id, customer_id, operation, field, old_value, new_value, touchpoint, initiator, initiator_key_id, request_id) VALUES (bench_uuid7(), :project, :cid, 'subscription', 'subscriptions.email', to_jsonb(:old_status::text), to_jsonb(:new_status::text), 'admin', 'admin', :keyid, 'pgbench');
UPDATE customers SET version = version + 1, updated_at = now() WHERE customers.id = :cid;
COMMIT;
