"""``python -m services.ledger``: serve the ledger's internal API on LEDGER_PORT."""

from shared.serve import serve
from shared.settings import get_settings

if __name__ == "__main__":
    serve("ledger", "services.ledger.app:create_app", get_settings().ledger_port)
