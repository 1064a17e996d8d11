# faxbridge: the email-to-fax SMTP bridge in one container (SMTP on 2525, HTTP on 8025).
#   docker build -t faxbridge .
#   docker run -v ./config.yaml:/etc/faxbridge/config.yaml:ro -p 2525:2525 -p 8025:8025 faxbridge
# deploy/docker-compose.yml runs it with PostgreSQL. tests/test_docker.py checks this file and,
# where a Docker engine answers, builds the image and faxes through it.
#
# The base is pinned to the exact Python the test venv runs (3.11.7) on Debian 12. Pin its
# digest too where you can look it up (`docker buildx imagetools inspect
# python:3.11.7-slim-bookworm`), as `FROM python:3.11.7-slim-bookworm@sha256:…`: the machines
# this file was written on reach no container registry, so no digest is invented here.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FAXBRIDGE_CONFIG=/etc/faxbridge/config.yaml

# What the bridge runs besides Python: Ghostscript renders inbound faxes as TIFF
# (inbound.format: tiff) and converts PostScript/EPS, DejaVu draws cover pages and text bodies,
# headless LibreOffice converts Office files and HTML, driven over UNO by Debian's python3
# (python3-uno); Liberation and Carlito stand in for Office's fonts. tini is PID 1: it reaps
# the Ghostscript and LibreOffice children and hands SIGTERM to the bridge, so `docker run`
# needs no --init.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini ghostscript fonts-dejavu-core \
       libreoffice-core-nogui libreoffice-writer-nogui libreoffice-calc-nogui \
       libreoffice-impress-nogui python3-uno fonts-liberation2 fonts-crosextra-carlito \
    && rm -rf /var/lib/apt/lists/*

# A numeric user (10001, no name needed on the host) so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --gid 10001 faxbridge \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/faxbridge --no-create-home \
       --shell /usr/sbin/nologin faxbridge \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/faxbridge \
    && install -d -m 0755 /etc/faxbridge

# Exactly the versions the tests ran on (requirements.lock), then the bridge without resolving
# anything again.
COPY requirements.lock /src/requirements.lock
RUN pip install -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY bridge /src/bridge
RUN pip install --no-deps /src && rm -rf /src

# A working default (simulator, PostgreSQL from env vars, listening on 0.0.0.0); mount your
# own over it.
COPY deploy/config.docker.yaml /etc/faxbridge/config.yaml

USER 10001:10001
WORKDIR /var/lib/faxbridge
VOLUME ["/var/lib/faxbridge"]
EXPOSE 2525 8025

# Healthy only when a client outside could use it: fails at once when smtp.listen or
# http.listen is a loopback address, else wants 220 from SMTP and 200 from /healthz on the
# container's own address. Reads the same config as the CMD; mount yours at that path.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["faxbridge", "healthcheck", "-c", "/etc/faxbridge/config.yaml", "--timeout", "3"]

# SIGTERM = graceful: stop listening, finish open SMTP transactions and sends, exit 0.
# Give it time: `docker stop -t 120`, or stop_grace_period in compose.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["faxbridge", "serve", "-c", "/etc/faxbridge/config.yaml"]
