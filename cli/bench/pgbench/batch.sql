-- 1,000 uniformly random transfers in one transaction (the reference for POST /v1/transfers/batch).
SELECT bench_transfer_batch(1000, :naccounts);
