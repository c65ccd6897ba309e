"""``python -m services.gateway``: the public API on ``GATEWAY_PORT``."""

from shared.serve import serve
from shared.settings import get_settings

if __name__ == "__main__":
    serve("gateway", "services.gateway.app:create_app", get_settings().gateway_port)
