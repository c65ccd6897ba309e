-- One transfer per transaction between a uniformly random pair of distinct accounts (1..naccounts).
\set a random(1, :naccounts)
\set b random(1, :naccounts - 1)
\set b (:a + :b - 1) % :naccounts + 1
SELECT bench_transfer(:a, :b, 1);
