# syntax=docker/dockerfile:1
# Multi-stage image for hub and relay (same image, different command).
# Not exercised on our build machines (no Docker there); it calls the same
# scripts as the tested path so the recipe cannot drift.

FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY scripts ./scripts
# Builds the mediasoup worker against Debian's libraries (installs the build
# packages itself) and places it where mediasoup looks for it.
ENV CALLHUB_CACHE_DIR=/tmp/callhub-cache
RUN bash scripts/build-worker.sh
COPY . .
# tsx is a runtime dependency (services run the TypeScript sources directly).
RUN node --import tsx scripts/build-web.ts && npm prune --omit=dev --ignore-scripts

FROM debian:bookworm-slim AS runtime
# Runtime libraries the worker links against, plus Node.js from the build stage.
RUN apt-get update && apt-get install -y --no-install-recommends \
      libssl3 libuv1 libsrtp2-1 libusrsctp2 libabsl20220623 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
RUN useradd --system --uid 10001 --home /app callhub
WORKDIR /app
COPY --from=build --chown=callhub:callhub /app /app
USER callhub
ENV NODE_ENV=production HUB_PORT=8080
EXPOSE 8080 4443 40000-40009/udp 40000-40009/tcp
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:${HUB_PORT:-8080}/healthz || exit 1
# Hub by default; the relay runs the same image with `node --import tsx relay/main.ts`.
CMD ["node", "--import", "tsx", "server/main.ts"]
