-- orders_by_region.sql: rendered by Jinja before it runs (run {{ run_id }}, day {{ ds }}).
SELECT region,
       COUNT(*)    AS orders,
       SUM(amount) AS revenue,
       MIN(id)     AS first_order_id
FROM orders
GROUP BY region
ORDER BY region
