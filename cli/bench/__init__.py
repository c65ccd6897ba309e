"""``./scripts/bench``: the benchmark suite of ``performance.md``.

    ./scripts/bench [--scenario NAME ...] [--duration S] [--json FILE] [--plot [FILE]]

It starts a private copy of the local platform (:mod:`.platform`), creates a tenant, a session and
the accounts (:mod:`.fixtures`), drives each scenario (:mod:`.scenarios`) from a separate load
generator process (:mod:`.loadgen`, run by :mod:`.runner`), measures the pgbench reference in the
same run on the same PostgreSQL (:mod:`.reference`, scripts in ``pgbench/``), and prints the
results with ``ratio = ours / pgbench`` against the targets (:mod:`.report`); ``--plot`` draws them
(:mod:`.plot`). Everything it starts it stops; it never touches a running platform.
"""
