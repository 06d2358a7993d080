# spacescribe: bots + web server + scheduler + worker in one image.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt README.md alembic.ini config.toml ./
COPY bot ./bot
COPY core ./core
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install --no-cache-dir -c constraints.txt -e . \
 && useradd --create-home --uid 10001 spacescribe \
 && mkdir -p /app/data && chown spacescribe /app/data

USER spacescribe
# SQLite database and Space files live here; mount a volume to keep them.
VOLUME ["/app/data"]
ENV SPACESCRIBE_WEB__HOST=0.0.0.0
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)" || exit 1
CMD ["spacescribe", "run"]
