"""``python -m services.ledger``: serve the ledger's internal API on LEDGER_PORT."""

from shared.serve import checked_settings, serve

if __name__ == "__main__":
    serve("ledger", "services.ledger.app:create_app", checked_settings("ledger").ledger.port)
