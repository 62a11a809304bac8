# Signet, the Notary v1 compatible trust server.
# Build: docker build -t signet .
# Run:   docker run -e DATABASE_URL=postgres://… -e SIGNET_KEY_ENCRYPTION_KEY=… -p 4443:4443 signet
FROM node:20-bookworm-slim

WORKDIR /app

# Dependencies first, so that they are cached while only the sources change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations

# Compile, then drop the build-only dependencies.
RUN npm run build && npm prune --omit=dev

# Run as the image's unprivileged `node` user; /app/data holds the embedded database and the
# generated key-encryption key when DATABASE_URL or SIGNET_KEY_ENCRYPTION_KEY are not set.
RUN mkdir -p /app/data && chown node:node /app/data
USER node

ENV NODE_ENV=production \
    SIGNET_HOST=0.0.0.0 \
    SIGNET_PORT=4443 \
    SIGNET_DATA_DIR=/app/data

EXPOSE 4443

CMD ["node", "--max-semi-space-size=2", "dist/src/cli/main.js", "serve"]
