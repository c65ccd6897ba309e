import sys

from cli.bench.main import main

sys.exit(main(sys.argv[1:]))
