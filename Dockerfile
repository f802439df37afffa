# The eventbatch image (deploy/base/deployment.yaml runs it as
# ghcr.io/eventbatch/eventbatch:<version>): build it from the repository root with
#   docker build -t ghcr.io/eventbatch/eventbatch:0.1.0 .
# Stage one builds the project's wheel; stage two installs it, with its dependencies,
# into a virtualenv on a clean Python and runs `eventbatch` as a non-root user.
# tests/deploy/test_image.py lints this file with hadolint and runs the same install
# steps (wheel, clean virtualenv, `eventbatch --help`, a small `simulate`).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY eventbatch/ eventbatch/
COPY handlers/ handlers/
COPY projections/ projections/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PATH=/opt/eventbatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /dist/ /tmp/dist/
RUN python -m venv /opt/eventbatch \
    && /opt/eventbatch/bin/pip install --no-cache-dir /tmp/dist/*.whl \
    && rm -rf /tmp/dist
# The uid and gid the Deployment's securityContext names (runAsUser 65532).
USER 65532:65532
WORKDIR /home/eventbatch
EXPOSE 8080
ENTRYPOINT ["eventbatch"]
CMD ["--help"]
