-- get_customer: what GET /v1/customers/{id} sends (app/customers/service.py:
-- get_customer -> surviving_customer -> view_of), one transaction. The random seeded id
-- comes from bench_ids inside the first SELECT (one extra primary-key probe).
-- Variables (-D): project, keyprefix, seeds, full (0|1).
\set i random(1, :seeds)
\if :full
-- Authentication (app/projects/service.py: authenticate), its own transaction.
BEGIN;
SELECT * FROM api_keys WHERE prefix = :keyprefix;
COMMIT;
\endif
BEGIN;
SELECT * FROM customers WHERE project_id = :project AND id = (SELECT id FROM bench_ids WHERE n = :i) \gset c_
SELECT * FROM customer_identifiers WHERE project_id = :project AND customer_id IN (:c_id) ORDER BY id;
SELECT id, merged_into FROM customers WHERE project_id = :project AND merged_into IN (:c_id) ORDER BY id;
COMMIT;
