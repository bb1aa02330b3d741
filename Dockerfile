# ConsultBot: one bot instance per container (see compose.yaml for two behind a proxy).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# pg_dump and pg_restore for `consultbot backup` on PostgreSQL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# The runtime's locked versions, exactly as `make install` uses them; the test tools are
# locked apart (requirements-dev.lock) and stay out of the image.
COPY requirements.lock ./
RUN pip install -r requirements.lock

# The application runs from its source tree: the catalogs (locales/) sit next to bot/.
COPY pyproject.toml ./
COPY bot ./bot
COPY storage ./storage
COPY consultbot ./consultbot
COPY locales ./locales
COPY consultations ./consultations

RUN useradd --system --home-dir /app --shell /usr/sbin/nologin consultbot \
    && mkdir -p /app/data \
    && chown consultbot:consultbot /app/data
USER consultbot

# SQLite (the default DATABASE_URL) keeps its file here; with PostgreSQL it stays empty.
VOLUME ["/app/data"]
# WEBHOOK_LISTEN must be 0.0.0.0:8080 in a container (the default listens on 127.0.0.1).
EXPOSE 8080

# `run` applies the migrations first; SIGTERM stops it cleanly (claims handed back).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "consultbot"]
CMD ["run"]
