"""``python -m services.gateway``: the public API on ``GATEWAY_PORT``."""

from shared.serve import checked_settings, serve

if __name__ == "__main__":
    serve("gateway", "services.gateway.app:create_app", checked_settings("gateway").gateway.port)
