# faxbridge: the email-to-fax SMTP bridge in one container (SMTP on 2525, HTTP on 8025).
#   docker build -t faxbridge .
#   docker run -v ./config.yaml:/etc/faxbridge/config.yaml:ro -p 2525:2525 -p 8025:8025 faxbridge
# deploy/docker-compose.yml runs it with PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FAXBRIDGE_CONFIG=/etc/faxbridge/config.yaml

# What the bridge runs besides Python: Ghostscript renders inbound faxes as TIFF
# (inbound.format: tiff) and converts PostScript/EPS, DejaVu draws cover pages and text bodies,
# headless LibreOffice converts Office files and HTML, driven over UNO by Debian's python3
# (python3-uno); Liberation and Carlito stand in for Office's fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ghostscript fonts-dejavu-core \
       libreoffice-core-nogui libreoffice-writer-nogui libreoffice-calc-nogui \
       libreoffice-impress-nogui python3-uno fonts-liberation2 fonts-crosextra-carlito \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system faxbridge \
    && useradd --system --gid faxbridge --home-dir /var/lib/faxbridge --no-create-home \
       --shell /usr/sbin/nologin faxbridge \
    && install -d -o faxbridge -g faxbridge -m 0750 /var/lib/faxbridge \
    && install -d -m 0755 /etc/faxbridge

COPY pyproject.toml README.md /src/
COPY bridge /src/bridge
RUN pip install /src && rm -rf /src

# A working default (simulator, PostgreSQL from env vars); mount your own over it.
COPY deploy/config.docker.yaml /etc/faxbridge/config.yaml

USER faxbridge
WORKDIR /var/lib/faxbridge
VOLUME ["/var/lib/faxbridge"]
EXPOSE 2525 8025

# Liveness only (/readyz also needs the database): is the process answering HTTP?
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8025/healthz', timeout=4).status != 200)"]

# SIGTERM = graceful: stop listening, finish open SMTP transactions and sends, exit 0.
# Give it time: `docker stop -t 120`, or stop_grace_period in compose.
STOPSIGNAL SIGTERM
CMD ["faxbridge", "serve", "-c", "/etc/faxbridge/config.yaml"]
