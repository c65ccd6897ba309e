import sys

from cli.bench.main import main
from cli.bench.tracing import split_argv, tracing_arguments

# ``--tracing off|RATIO`` (cli/bench/tracing.py) is handled here, around the benchmark proper.
ratio, given, argv = split_argv(sys.argv[1:])
if not given:
    sys.exit(main(argv))
label = [] if "--label" in argv else ["--label", f"tracing={'off' if ratio is None else f'{ratio:g}'}"]
with tracing_arguments(ratio) as extra:
    code = main([*argv, *extra, *label])
sys.exit(code)
