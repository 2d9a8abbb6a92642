# syntax=docker/dockerfile:1
# hub-mirror-operator: one image for the operator (`manager`, the Helm chart's Deployment)
# and for the mirror Jobs' reporter container (`report`, started by the operator).
# Build: docker build -t ghcr.io/hubmirror/hub-mirror-operator:0.1.0 .
# Checked statically by test/unit/dockerfile.test.ts; built with buildah as written and run on a
# real node by test/e2e/real-node.test.ts.
# Pin by digest as well in a release pipeline: node:24.21.0-bookworm-slim@sha256:...
ARG NODE_IMAGE=docker.io/library/node:24.21.0-bookworm-slim

# Build: all dependencies (TypeScript, and the `node` devDependency the npm scripts run
# with), then tsc -p tsconfig.build.json -> dist/src/.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build

# Runtime: production dependencies and the compiled code only; npm and yarn removed.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force \
  && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
    /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* \
    /usr/local/bin/yarn /usr/local/bin/yarnpkg /root/.npm
COPY --from=build /app/dist/src/ dist/src/
# The image's `node` user, by number so that runAsNonRoot can verify it. Files stay
# root-owned and world-readable: OpenShift runs the container with an arbitrary UID.
USER 1000:1000
LABEL org.opencontainers.image.title="hub-mirror-operator" \
  org.opencontainers.image.source="https://github.com/hubmirror/hub-mirror-operator" \
  org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["manager"]
