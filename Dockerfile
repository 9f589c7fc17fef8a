# fitscope server image: the dashboard and API, with PostgreSQL support.
# Built by docker-compose.yml; on its own:
#   docker build -t fitscope . && docker run -p 7007:7007 -e FITSCOPE_TOKEN=... fitscope
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FITSCOPE_DIR=/data

WORKDIR /app
# the server extra only: no torch in the server image
COPY pyproject.toml README.md ./
COPY client_hook ./client_hook
COPY server ./server
COPY web ./web
COPY migrations ./migrations
RUN pip install ".[server]" \
    && useradd --create-home --uid 10001 fitscope \
    && mkdir -p /data \
    && chown fitscope /data

USER fitscope
VOLUME ["/data"]
EXPOSE 7007

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7007/api/v1/health', timeout=3)"]

# Migrate first (once, before any worker starts), then serve with a schema check only.
# FITSCOPE_HOST / FITSCOPE_PORT exist so the same command can be run outside the container.
CMD ["sh", "-c", "fitscope db upgrade && exec fitscope serve --host \"${FITSCOPE_HOST:-0.0.0.0}\" --port \"${FITSCOPE_PORT:-7007}\" --no-upgrade --log-level info"]
