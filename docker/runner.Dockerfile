# syntax=docker/dockerfile:1
# The runner image: what the operator runs a hosted stdio MCP server in when the server names
# no image of its own. Python, Node.js (npx), uv (uvx) and git, plus `mcpyard bridge`, which
# serves the stdio server over streamable HTTP. The operator's Deployment passes the whole
# command as args:  mcpyard bridge --port 8080 -- uvx mcp-server-time
#
#   docker build -f docker/runner.Dockerfile -t mcpyard-runner:dev .
#
# Base images are pinned by exact version tag (add @sha256:... digests in production).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG NODE_IMAGE=node:22.20.0-bookworm-slim
ARG UV_VERSION=0.13.9

FROM ${NODE_IMAGE} AS node

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/mcpyard
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mcpyard ./mcpyard
RUN /opt/mcpyard/bin/pip install . "uv==${UV_VERSION}" \
 && /opt/mcpyard/bin/mcpyard --version

FROM ${PYTHON_IMAGE}
# tini reaps the stdio server's children and forwards signals; git is for servers like
# mcp-server-git; ca-certificates for the servers' own HTTPS calls.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends tini git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npx --version
COPY --from=build /opt/mcpyard /opt/mcpyard
RUN groupadd --gid 10001 mcp \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/mcp --shell /bin/sh mcp
# uvx and npx download servers at start: their caches live in the (writable) home.
ENV PATH=/opt/mcpyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/mcp \
    UV_CACHE_DIR=/home/mcp/.cache/uv \
    UV_TOOL_DIR=/home/mcp/.local/share/uv/tools \
    npm_config_cache=/home/mcp/.npm \
    npm_config_update_notifier=false
WORKDIR /home/mcp
# Numeric, so that Kubernetes can check runAsNonRoot (the operator's pods set it).
USER 10001:10001
EXPOSE 8080
# No `mcpyard` entrypoint: the operator passes the full command (mcpyard bridge ...) as args.
ENTRYPOINT ["tini", "--"]
CMD ["mcpyard", "bridge", "--help"]
