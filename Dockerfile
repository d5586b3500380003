# syntax=docker/dockerfile:1
# artifact-vault's container image:
#   docker build -t artifact-vault .
#   docker run -d --name vault -p 8080:8080 -v vault-data:/data --stop-timeout 45 artifact-vault
# It runs as an unprivileged user (uid 1000) with everything it keeps under the /data volume, and
# its configuration is deploy/config.yml (environment overrides: deploy/dotenv.template).

# ---- build: the README's commands, then only the runtime dependencies are kept ----------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; the build runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY ui ./ui
COPY scripts/build-ui.mjs ./scripts/
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find dist -name '*.test.*' -delete

# ---- runtime -------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    AUTH_TOKENS_FILE=/data/tokens.json
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/ui ./dist/ui
COPY deploy/config.yml /etc/artifact-vault/config.yml
COPY deploy/storage.yaml.template /etc/artifact-vault/storage.yaml
# /data belongs to the image's `node` user (uid 1000), so a new volume mounted there does too.
# `artifact-vault` on the PATH: `docker exec vault artifact-vault tokens add ci --scope read`.
RUN mkdir /data && chown 1000:1000 /data \
 && ln -s /app/dist/src/cli/main.js /usr/local/bin/artifact-vault
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
VOLUME ["/data"]
EXPOSE 8080
# SIGTERM drains in-flight requests for up to shutdown_timeout (30 s): stop with a longer timeout
# (`docker stop -t 45`, compose's stop_grace_period), or Docker kills it after 10 s.
STOPSIGNAL SIGTERM
# No curl in slim images: Node's fetch asks /health (200 while serving, "degraded" included).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form, node itself as PID 1: `docker stop` signals the vault, not a shell or npm.
# --max-semi-space-size=4: V8's young generation capped at 4 MiB (some 30 MB less memory).
CMD ["node", "--max-semi-space-size=4", "dist/src/cli/main.js", "serve", "--config", "/etc/artifact-vault/config.yml"]
