# conveyor: the REST service (and the same image runs `update` on a schedule, see compose).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml requirements.txt README.md ./
COPY conveyor ./conveyor
COPY run.py conveyor.yaml ./
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 conveyor \
    && mkdir -p /app/workspace /app/data \
    && chown -R conveyor:conveyor /app

USER conveyor
# the workspace (database, raw batches, models, reports) and the data live outside the image
VOLUME ["/app/workspace", "/app/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"

ENTRYPOINT ["conveyor", "--config", "/app/conveyor.yaml"]
CMD ["serve", "--host", "0.0.0.0"]
