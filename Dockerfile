# Multi-stage: build a virtualenv with the app installed, copy it into a slim runtime.
FROM python:3.12-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

FROM python:3.12-slim AS runtime
RUN useradd --create-home --uid 10001 cdp
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/cdp
# Migrations run from here: `cdp serve` and `cdp migrate` find alembic.ini in the working dir.
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CDP_DATA_DIR=/home/cdp/data
USER cdp
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["cdp", "serve", "--host", "0.0.0.0", "--port", "8000"]
