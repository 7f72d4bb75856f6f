-- One POS cash sale with one line by EAN, statement for statement as the app ran
-- it BEFORE the hot-path work (19 round trips). pgbench -M prepared; -D nvar=<variants>.
\set n1 random(1, :nvar)
\set key random(1, 9223372036854775806)
-- The idempotency check, in its own read transaction.
BEGIN;
SELECT id, request_hash FROM orders WHERE idempotency_key = 'pgb-' || :client_id || '-' || :key;
ROLLBACK;
BEGIN;
SELECT id AS ch_id, code, kind, name, location_id AS loc FROM channels WHERE code = 'pos-1' \gset
-- The variant by EAN with the VAT rate in force today.
SELECT v.id AS v1, v.product_id AS p1, coalesce(p.category_id, 0) AS c1, v.sku AS sku1,
       v.ean, p.name || ' – ' || v.name AS name1, v.price_cents AS pr1,
       v.active AND p.active AS active,
       (SELECT vr.rate_bp FROM vat_rates vr WHERE vr.vat_class_code = p.vat_class_code
          AND vr.valid_from <= current_date
          AND (vr.valid_to IS NULL OR vr.valid_to > current_date)
        ORDER BY vr.valid_from DESC LIMIT 1) AS r1
FROM variants v JOIN products p ON p.id = v.product_id
WHERE v.ean IN ('6409876' || lpad(:n1::text, 5, '0') || ((10 - (80 + 3 * (:n1 / 10000) + (:n1 / 1000) % 10 + 3 * ((:n1 / 100) % 10) + (:n1 / 10) % 10 + 3 * (:n1 % 10)) % 10) % 10)::text) \gset
-- Campaigns valid now for this variant, product or category in this channel.
SELECT c.id, c.name, c.kind, c.value, t.target_type, t.target_id
FROM campaigns c JOIN campaign_targets t ON t.campaign_id = c.id
WHERE c.active AND c.starts_at <= now() AND (c.ends_at IS NULL OR c.ends_at > now())
  AND (t.target_type = 'variant' AND t.target_id IN (:v1)
       OR t.target_type = 'product' AND t.target_id IN (:p1)
       OR t.target_type = 'category' AND t.target_id IN (:c1))
  AND (NOT EXISTS (SELECT 1 FROM campaign_channels cc WHERE cc.campaign_id = c.id)
       OR EXISTS (SELECT 1 FROM campaign_channels cc WHERE cc.campaign_id = c.id
                  AND cc.channel_id = :ch_id));
\set total :pr1
\set vat1 (:pr1 * :r1 + (10000 + :r1) / 2) / (10000 + :r1)
INSERT INTO orders (channel_id, location_id, customer_id, status, currency, subtotal_cents,
                    discount_cents, total_cents, vat_cents, paid_cents, idempotency_key,
                    request_hash, created_by, created_at)
VALUES (:ch_id, :loc, NULL, 'completed', 'EUR', :total, 0, :total, :vat1, :total,
        'pgb-' || :client_id || '-' || :key, md5(:key::text) || md5(:client_id::text),
        'staff:1 omistaja@kaunisiho.fi', now())
RETURNING id AS order_id \gset
INSERT INTO stock_levels (variant_id, location_id, on_hand, reserved, needs_count, updated_at)
VALUES (:v1, :loc, -1, 0, true, now())
ON CONFLICT (variant_id, location_id) DO UPDATE
SET on_hand = stock_levels.on_hand + excluded.on_hand,
    needs_count = stock_levels.needs_count OR stock_levels.on_hand + excluded.on_hand < 0,
    updated_at = now()
RETURNING on_hand AS oh_a, reserved AS rs_a, needs_count AS nc_a \gset
INSERT INTO stock_movements (variant_id, location_id, kind, quantity, balance_after, reason,
                             reference, order_id, actor, created_at)
VALUES (:v1, :loc, 'sale', -1, :oh_a, '', lpad(:order_id::text, 6, '0'), :order_id,
        'staff:1 omistaja@kaunisiho.fi', now());
INSERT INTO order_lines (order_id, line_no, variant_id, location_id, sku, name, quantity,
                         unit_price_cents, discount_cents, total_cents, vat_rate_bp, vat_cents)
VALUES (:order_id, 1, :v1, :loc, :sku1, :name1, 1, :pr1, 0, :pr1, :r1, :vat1);
INSERT INTO payments (order_id, method, status, amount_cents, rounding_cents, tendered_cents,
                      change_cents, reference, location_id, created_at)
VALUES (:order_id, 'cash', 'captured', :total, 0, :total, 0, '', :loc, now()) RETURNING id;
-- The order read back for the response.
SELECT o.*, ch.code FROM orders o JOIN channels ch ON ch.id = o.channel_id WHERE o.id = :order_id;
SELECT * FROM order_lines WHERE order_id = :order_id ORDER BY line_no;
SELECT * FROM payments WHERE order_id = :order_id ORDER BY id;
-- Outbox events and their notifications, in one statement.
WITH ins AS (
  INSERT INTO outbox (topic, payload, created_at) VALUES
    ('stock.changed', json_build_object('variant_id', :v1::int, 'location_id', :loc::int,
       'on_hand', :oh_a::int, 'reserved', :rs_a::int, 'available', :oh_a::int - :rs_a::int,
       'needs_count', :nc_a::boolean), now()),
    ('order.created', json_build_object('order_id', :order_id::bigint, 'channel', 'pos-1',
       'location_id', :loc::int, 'status', 'completed', 'total_cents', :total::int,
       'customer_id', NULL), now())
  RETURNING id, topic, payload, created_at)
SELECT pg_notify('saumaton_events', CASE WHEN length(payload::text) < 7000
  THEN json_build_object('id', id, 'topic', topic, 'payload', payload,
                         'created_at', created_at)::text
  ELSE json_build_object('id', id, 'topic', topic)::text END) FROM ins;
COMMIT;
