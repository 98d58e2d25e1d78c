# scheduler-service: docker build -t scheduler-service . ; see docker-compose.yml
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY scheduler_service ./scheduler_service
COPY jobs ./jobs
COPY config ./config
RUN pip install '.[all]' \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin scheduler \
    && mkdir -p /var/lib/scheduler && chown scheduler /var/lib/scheduler

USER scheduler
# SQLite files and generated development credentials live here unless a URL moves them.
ENV SCHEDULER_INSTANCE_PATH=/var/lib/scheduler
VOLUME ["/var/lib/scheduler"]
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4)"]

# waitress, one process; SIGTERM stops it cleanly. Several worker processes instead (needs
# SCHEDULER_COORDINATION, see README "gunicorn with several workers"):
#   gunicorn -c config/gunicorn.conf.py --bind 0.0.0.0:8080 --workers 3
CMD ["scheduler-service", "run", "--host", "0.0.0.0", "--port", "8080"]
