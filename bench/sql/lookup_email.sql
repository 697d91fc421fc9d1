-- lookup_email: what GET /v1/customers/lookup?email=... sends
-- (app/customers/service.py: lookup_customer), autocommit statements (no transaction).
-- Variables (-D): project, keyprefix, seeds, full (0|1).
\set i random(1, :seeds)
\if :full
-- Authentication with the project's settings (app/projects/repository.py:
-- key_with_project).
SELECT k.id, k.project_id, k.name, k.kind, k.secret_hash, k.scopes, k.touchpoint, k.allowed_touchpoints, k.expires_at, k.last_used_at, k.revoked_at, p.default_phone_region, p.rules_version, p.identifier_priority, p.subscription_channels FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.prefix = :keyprefix;
\endif
SELECT i.kind, i.value, i.customer_id FROM customer_identifiers i JOIN unnest(ARRAY['email'], ARRAY['seed' || :i::text || '@bench.example']) AS wanted(kind, value) ON i.kind = wanted.kind AND i.value = wanted.value WHERE i.project_id = :project \gset o_
SELECT c.*, (SELECT array_agg(i.kind ORDER BY i.id) FROM customer_identifiers i WHERE i.customer_id = c.id) AS identifier_kinds, (SELECT array_agg(i.value ORDER BY i.id) FROM customer_identifiers i WHERE i.customer_id = c.id) AS identifier_values, (WITH RECURSIVE tree(id) AS (SELECT m.id FROM customers m WHERE m.merged_into = c.id UNION ALL SELECT m.id FROM customers m JOIN tree ON m.merged_into = tree.id) SELECT array_agg(id ORDER BY id) FROM tree) AS merged_ids FROM customers c WHERE c.project_id = :project AND c.id IN (:o_customer_id);
