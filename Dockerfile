# One image for every leadflow service; docker-compose picks the service with the command
# (`leadflow ingest`, `leadflow scoring`, `leadflow routing`, `leadflow db upgrade`).

# --- build: a virtualenv with the dependencies, then the project itself -------------------
FROM python:3.11.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the code reuses this layer.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt

COPY README.md ./
COPY leadflow/ leadflow/
COPY shared/ shared/
COPY services/ services/
COPY views/ views/
COPY operations/ operations/
COPY migrations/ migrations/
RUN pip install -c constraints.txt .

# --- runtime: the virtualenv only, no sources or build leftovers, as a non-root user -----
FROM python:3.11.11-slim-bookworm

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 leadflow \
 && useradd --system --uid 10001 --gid leadflow --home-dir /app --create-home leadflow

COPY --from=build /opt/venv /opt/venv

USER leadflow
WORKDIR /app
EXPOSE 8000

ENTRYPOINT ["leadflow"]
