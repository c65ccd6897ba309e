-- One transfer per transaction between a random pair of distinct accounts out of 1..10 (random
-- direction), so with 20 clients every transfer contends for both its rows with others.
\set a random(1, 10)
\set b random(1, 9)
\set b (:a + :b - 1) % 10 + 1
SELECT bench_transfer(:a, :b, 1);
