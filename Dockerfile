# Application image for the BPM server: used by the `migrate`, `web` and
# `worker` services of docker-compose.yml (each overrides the command).

# bpmn-js for the modeler and instance pages comes from npm, as in `make
# install`; only its node_modules reach the final image, not Node.js.
FROM node:20-slim AS frontend
WORKDIR /frontend
COPY bpm_server/web/frontend/package.json bpm_server/web/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged runtime user with a fixed numeric id (so orchestrators can
# verify runAsNonRoot).
RUN groupadd --system --gid 10001 bpm \
 && useradd --system --uid 10001 --gid bpm --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin bpm

WORKDIR /app

# Layer 1: third-party dependencies only, at the versions CI tested: requirements.txt
# is the lock (`make lock`) of pyproject.toml's dependencies, with hashes, so this
# layer is rebuilt when the lock changes, not on every code edit.
COPY pyproject.toml README.md requirements.txt ./
RUN pip install --require-hashes -r requirements.txt

# Layer 2: the application packages (dependencies are already in place).
# Installed in place (editable) so the pages find bpmn-js under the package
# folder; the web UI's message catalogues are compiled here (no .mo in git).
COPY bpm_server ./bpm_server
COPY integrations ./integrations
COPY --from=frontend /frontend/node_modules ./bpm_server/web/frontend/node_modules
RUN pip install --no-deps -e . \
 && pybabel compile -D messages -d bpm_server/translations \
 && pybabel compile -D pages -d bpm_server/web/translations \
 && rm -rf build

# Layer 3: process models and forms, read by `bpm-server models sync`; they
# change most often, so they come last.
COPY process_models ./process_models
COPY forms ./forms

# The application code stays root-owned and read-only for the runtime user;
# only var/ (default SQLite location when BPM_DATABASE_URL is unset) is writable.
RUN mkdir -p /app/var && chown bpm:bpm /app/var

ENV BPM_MODELS_DIR=/app/process_models \
    BPM_FORMS_DIR=/app/forms

USER 10001:10001

EXPOSE 8000

CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "bpm_server.wsgi:app"]
