"""``python -m services.session``: the session service on ``SESSION_PORT``."""

from shared.serve import serve
from shared.settings import get_settings

if __name__ == "__main__":
    serve("session", "services.session.app:create_app", get_settings().session_port)
