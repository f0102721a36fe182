# syntax=docker/dockerfile:1
# scim-bridge: multi-stage build. The build stage compiles better-sqlite3 and the TypeScript; the
# runtime stage holds only production dependencies and the compiled output, and runs as a non-root user.

# ── build ────────────────────────────────────────────────────────────────────────────────────────
FROM node:20-bookworm-slim AS build
# better-sqlite3 has a native addon; compile it here so the runtime image needs no toolchain.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Build the addon from source rather than download a prebuilt binary, against the headers that
# ship with this Node image (node-gyp would otherwise download them).
ENV npm_config_build_from_source=true \
    npm_config_nodedir=/usr/local

# Dependencies first, so that this layer is reused while only the sources change. Scripts are off
# here (the `prepare` script would compile sources that are not copied yet); the native build runs next.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY db ./db
COPY src ./src
COPY scim ./scim
COPY mappings ./mappings
# Only src/ and db/ (tsconfig.build.json); `npm run build` also compiles the tests, which are not copied.
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund

# ── runtime ──────────────────────────────────────────────────────────────────────────────────────
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=8787 \
    DATABASE_URL=sqlite:/data/bridge.db
WORKDIR /app

# Application files stay owned by root (read-only to the service); only /data is writable.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/db ./db
COPY --from=build /app/scim ./scim
COPY --from=build /app/mappings ./mappings

# The node image ships an unprivileged "node" user (uid 1000).
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node

EXPOSE 8787
# No curl in the slim image: Node's own fetch checks liveness.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8787) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM (docker stop) starts the graceful shutdown; give it time with `docker stop -t 30`.
STOPSIGNAL SIGTERM
CMD ["node", "bin/scim-bridge.js", "serve"]
