# One image for the three services; the ECS task definition's command picks the service:
#   python -m services.gateway | python -m services.ledger | python -m services.session
# Build and push: see docs/runbooks.md ("Build and push the image").

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: resolve the locked runtime dependencies into /opt/venv --------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.8.22 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services
RUN python -m compileall -q shared services

# --- rds-ca: the CA bundle the ledger verifies Aurora's certificate with (sslmode=verify-full) -------
# Fetched over HTTPS from the documented AWS trust store and checked to be a non-empty bundle of
# parseable certificates; pin it with --build-arg RDS_CA_BUNDLE_SHA256=<sha256> for a bit-exact build.
FROM ${PYTHON_IMAGE} AS rds-ca
ARG RDS_CA_BUNDLE_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
ARG RDS_CA_BUNDLE_SHA256=
ADD ${RDS_CA_BUNDLE_URL} /rds-ca/global-bundle.pem
RUN python -c "import hashlib, re, ssl, sys; \
pem = open('/rds-ca/global-bundle.pem').read(); \
certs = re.findall(r'-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----', pem, re.S); \
[ssl.PEM_cert_to_DER_cert(c) for c in certs]; \
digest = hashlib.sha256(pem.encode()).hexdigest(); \
want = '${RDS_CA_BUNDLE_SHA256}'; \
sys.exit('RDS CA bundle: no certificates' if not certs else 'RDS CA bundle: sha256 %s != %s' % (digest, want) if want and want != digest else 0)"

# --- runtime: the interpreter, the venv and the code; nothing else, never root --------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY --from=rds-ca --chmod=0444 /rds-ca/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BIND_HOST=0.0.0.0
WORKDIR /app
# Files stay owned by root and read-only to the service user; the task runs with a read-only root
# filesystem and a writable /tmp volume.
USER 10001:10001
EXPOSE 8000 8001 8002
CMD ["python", "-m", "services.gateway"]
