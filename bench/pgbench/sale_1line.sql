-- One POS cash sale with one line by EAN, statement for statement as the app
-- runs it now (8 round trips; see docs/performance.md). pgbench -M prepared;
-- -D nvar=<variants>.
\set n1 random(1, :nvar)
\set key random(1, 9223372036854775806)
BEGIN;
-- The idempotency check (the channel comes from a per-process cache).
SELECT id, request_hash FROM orders WHERE idempotency_key = 'pgb-' || :client_id || '-' || :key;
-- Variants by EAN with the VAT rate in force today (the app: one prepared statement,
-- WHERE v.id = ANY($1) OR v.ean = ANY($2)).
SELECT a.id AS v1, a.product_id AS p1, coalesce(a.category_id, 0) AS c1, a.price_cents AS pr1,
       a.rate AS r1, a.sku AS sku1, a.name AS name1
FROM (SELECT v.id, v.product_id, p.category_id, v.sku, v.ean, p.name || ' – ' || v.name AS name,
             v.price_cents, v.active AND p.active AS active, p.gift_card,
             (SELECT vr.rate_bp FROM vat_rates vr WHERE vr.vat_class_code = p.vat_class_code
                AND vr.valid_from <= current_date
                AND (vr.valid_to IS NULL OR vr.valid_to > current_date)
              ORDER BY vr.valid_from DESC LIMIT 1) AS rate
      FROM variants v JOIN products p ON p.id = v.product_id
      WHERE v.ean = '6409876' || lpad(:n1::text, 5, '0') || ((10 - (80 + 3 * (:n1 / 10000) + (:n1 / 1000) % 10 + 3 * ((:n1 / 100) % 10) + (:n1 / 10) % 10 + 3 * (:n1 % 10)) % 10) % 10)::text) a \gset
-- Campaigns valid now for these variants, products or categories in this channel,
-- with the channels each is limited to (the app: one prepared statement, arrays).
SELECT c.id, c.name, c.kind, c.value, t.target_type, t.target_id,
       (SELECT array_agg(ch.code ORDER BY ch.code)
        FROM campaign_channels cc JOIN channels ch ON ch.id = cc.channel_id
        WHERE cc.campaign_id = c.id)
FROM campaigns c JOIN campaign_targets t ON t.campaign_id = c.id
WHERE c.active AND c.starts_at <= now() AND (c.ends_at IS NULL OR c.ends_at > now())
  AND ((t.target_type = 'variant' AND t.target_id = ANY(ARRAY[:v1]::int[]))
       OR (t.target_type = 'product' AND t.target_id = ANY(ARRAY[:p1]::int[]))
       OR (t.target_type = 'category' AND t.target_id = ANY(ARRAY[:c1]::int[])))
  AND (NOT EXISTS (SELECT 1 FROM campaign_channels cc WHERE cc.campaign_id = c.id)
       OR EXISTS (SELECT 1 FROM campaign_channels cc WHERE cc.campaign_id = c.id
                  AND cc.channel_id = 2));
\set total :pr1
\set vat1 (:pr1 * :r1 + (10000 + :r1) / 2) / (10000 + :r1)
\set vat :vat1
-- The order (in the store's open drawer session), its lines and its cash payment in
-- one statement (the app's orders.writer statement also carries the web-order columns,
-- NULL for a store sale).
WITH d AS (
  SELECT ds.id FROM drawer_sessions ds JOIN registers r ON r.id = ds.register_id
  WHERE ds.location_id = 1 AND ds.status = 'open'
  ORDER BY r.active DESC, r.id LIMIT 1 FOR SHARE OF ds
), o AS (
  INSERT INTO orders (channel_id, location_id, customer_id, status, currency, subtotal_cents,
                      discount_cents, total_cents, vat_cents, paid_cents, idempotency_key,
                      request_hash, created_by, created_at, drawer_session_id)
  SELECT 2, 1, NULL, 'completed', 'EUR', :total, 0, :total, :vat, :total,
          'pgb-' || :client_id || '-' || :key, md5(:key::text) || md5(:client_id::text),
          'staff:1 omistaja@kaunisiho.fi', now(), d.id FROM d
  RETURNING id
), l AS (
  INSERT INTO order_lines (order_id, line_no, variant_id, location_id, sku, name, quantity,
                           unit_price_cents, discount_cents, total_cents, vat_rate_bp,
                           vat_cents, campaign_id)
  SELECT (SELECT id FROM o), line_no, variant_id, location_id, sku, name, quantity,
         unit_price_cents, discount_cents, total_cents, vat_rate_bp, vat_cents, campaign_id
  FROM unnest(ARRAY[1]::int[], ARRAY[:v1]::int[], ARRAY[1]::int[],
              ARRAY[:sku1]::text[], ARRAY[:name1]::text[], ARRAY[1]::int[],
              ARRAY[:pr1]::int[], ARRAY[0]::int[], ARRAY[:pr1]::int[],
              ARRAY[:r1]::int[], ARRAY[:vat1]::int[], ARRAY[NULL]::int[])
      WITH ORDINALITY AS l(line_no, variant_id, location_id, sku, name, quantity,
                           unit_price_cents, discount_cents, total_cents, vat_rate_bp,
                           vat_cents, campaign_id, n)
  ORDER BY n
), p AS (
  INSERT INTO payments (order_id, method, status, amount_cents, rounding_cents,
                        tendered_cents, change_cents, reference, location_id, created_at)
  SELECT (SELECT id FROM o), method, 'captured', amount_cents, rounding_cents,
         tendered_cents, change_cents, reference, 1, now()
  FROM unnest(ARRAY['cash']::text[], ARRAY[:total]::int[], ARRAY[0]::int[],
              ARRAY[:total]::int[], ARRAY[0]::int[], ARRAY['']::text[]) WITH ORDINALITY
      AS p(method, amount_cents, rounding_cents, tendered_cents, change_cents, reference, n)
  ORDER BY n
)
SELECT id AS order_id FROM o \gset
-- Stock: every line's level upserted in key order, with its ledger row, in one statement.
WITH m AS (
  SELECT * FROM unnest(ARRAY[:v1]::int[], ARRAY[1]::int[], ARRAY[-1]::int[],
                       ARRAY['sale']::text[], ARRAY['']::text[],
                       ARRAY[lpad(:order_id::text, 6, '0')]::text[],
                       ARRAY[:order_id]::bigint[]) WITH ORDINALITY
      AS m(variant_id, location_id, quantity, kind, reason, reference, order_id, n)
), lv AS (
  INSERT INTO stock_levels AS s (variant_id, location_id, on_hand, reserved, needs_count,
                                 updated_at)
  SELECT variant_id, location_id, quantity, 0, quantity < 0, now() FROM m ORDER BY n
  ON CONFLICT (variant_id, location_id) DO UPDATE
  SET on_hand = s.on_hand + excluded.on_hand,
      needs_count = s.needs_count OR s.on_hand + excluded.on_hand < 0,
      updated_at = excluded.updated_at
  RETURNING s.variant_id, s.location_id, s.on_hand, s.reserved, s.needs_count
), mv AS (
  INSERT INTO stock_movements (variant_id, location_id, kind, quantity, balance_after,
                               reason, reference, order_id, actor, created_at)
  SELECT m.variant_id, m.location_id, m.kind, m.quantity, lv.on_hand, m.reason,
         m.reference, m.order_id, 'staff:1 omistaja@kaunisiho.fi', now()
  FROM m JOIN lv ON lv.variant_id = m.variant_id AND lv.location_id = m.location_id
  ORDER BY m.n
)
SELECT (array_agg(on_hand ORDER BY variant_id))[1] AS oh_a, (array_agg(reserved ORDER BY variant_id))[1] AS rs_a, (array_agg(needs_count ORDER BY variant_id))[1] AS nc_a FROM lv \gset
-- Outbox events and their notifications, in one statement.
WITH ins AS (
  INSERT INTO outbox (topic, payload, created_at)
  SELECT e.topic, e.payload::json, now()
  FROM unnest(ARRAY['stock.changed', 'order.created']::text[],
              ARRAY[json_build_object('variant_id', :v1::int, 'location_id', 1, 'on_hand', :oh_a::int, 'reserved', :rs_a::int, 'available', :oh_a::int - :rs_a::int, 'needs_count', :nc_a::boolean)::text,
                    json_build_object('order_id', :order_id::bigint, 'channel', 'pos-1', 'location_id', 1, 'status', 'completed', 'total_cents', :total::int, 'customer_id', NULL)::text]::text[])
      WITH ORDINALITY AS e(topic, payload, n) ORDER BY e.n
  RETURNING id, topic, payload, created_at)
SELECT pg_notify('saumaton_events', CASE WHEN length(payload::text) < 7000
  THEN json_build_object('id', id, 'topic', topic, 'payload', payload,
                         'created_at', created_at)::text
  ELSE json_build_object('id', id, 'topic', topic)::text END) FROM ins ORDER BY id;
COMMIT;
