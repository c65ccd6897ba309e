-- One transfer per transaction from one of 10 source accounts (1..10) to the hot sink (naccounts + 1).
\set a random(1, 10)
\set sink :naccounts + 1
SELECT bench_transfer(:a, :sink, 1);
