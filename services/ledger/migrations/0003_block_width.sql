-- Event numbers are block * 1048576 + i (2^20 events per write transaction; 0001 said 65536).
-- Wider blocks keep a transaction that expires many due reservations at once from running out of
-- numbers. Numbers only ever grow, so history order is unchanged across the switch.
COMMENT ON SEQUENCE ledger_block_seq IS
    'One number per write transaction, taken after its account locks; events are numbered block * 1048576 + i.';
