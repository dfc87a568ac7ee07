# syntax=docker/dockerfile:1
#
# otel-twamp: TWAMP (RFC 5357) sender/reflector with OpenTelemetry metrics.
#
#   docker build -t otel-twamp .
#   docker run --rm -p 862:862/tcp -p 9464:9464/tcp \
#     -v "$PWD/agent.yaml:/etc/otel-twamp/agent.yaml:ro" otel-twamp
#   docker run --rm --network host otel-twamp probe 192.0.2.10 --count 200
#
# TWAMP test sessions use UDP ports negotiated per session: with port
# publishing, pin them with the reflector's `test_port_range` and publish that
# range too (-p 20000-20099:20000-20099/udp), or use --network host.
#
# The process runs as the unprivileged user `twamp`. Port 862 is below 1024:
# the node binary carries cap_net_bind_service (file capability), which
# Docker's default capability set allows. With --cap-drop ALL add
# --cap-add NET_BIND_SERVICE; with --security-opt no-new-privileges file
# capabilities are ignored, so rely on Docker's default
# net.ipv4.ip_unprivileged_port_start=0 or listen on a port ≥ 1024.
# A binary with file capabilities runs in secure-execution mode: Node then
# ignores NODE_OPTIONS and similar variables (OTEL_* variables still apply).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- build
FROM ${NODE_IMAGE} AS build
# Toolchain for the native DSCP helper (native/sockopt.cc, node-gyp).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.json binding.gyp ./
COPY native ./native
COPY scripts/build-native.mjs ./scripts/build-native.mjs
COPY src ./src
COPY packages/agent/package.json ./packages/agent/package.json
# npm ci installs, builds the addon (install script) and compiles TypeScript
# (prepare); build:native is strict, so a broken addon fails the image build
# instead of silently shipping an image that cannot mark DSCP. The SDK and
# exporters are the library's optional peers (dev dependencies here), so the
# prune drops them: they come back as the agent package (otel-twamp-agent)
# declares them, installed aside and merged in.
RUN npm ci \
 && npm run build:native \
 && npm prune --omit=dev \
 && npm install --prefix /tmp/sdk --no-save --no-audit --no-fund \
      $(node -p "Object.entries(require('./packages/agent/package.json').dependencies).filter(([n]) => n !== 'otel-twamp').map(([n, v]) => n + '@' + v).join(' ')") \
 && cp -rn /tmp/sdk/node_modules/. node_modules/ \
 && rm -rf /tmp/sdk \
 && npm cache clean --force

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="otel-twamp" \
      org.opencontainers.image.description="TWAMP (RFC 5357) sender and reflector with OpenTelemetry metrics" \
      org.opencontainers.image.licenses="Apache-2.0"
# setcap lets the non-root user bind TWAMP's port 862; libcap2-bin is removed afterwards.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 twamp \
 && useradd --system --uid 10001 --gid twamp --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin twamp
WORKDIR /opt/otel-twamp
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/build/Release/twamp_sockopt.node ./build/Release/twamp_sockopt.node
COPY collector-config ./collector-config
COPY deploy/agent.yaml /etc/otel-twamp/agent.yaml
RUN chmod 0755 dist/src/cli/main.js \
 && ln -s /opt/otel-twamp/dist/src/cli/main.js /usr/local/bin/otel-twamp \
 && otel-twamp agent --config /etc/otel-twamp/agent.yaml --check
USER twamp:twamp
# TWAMP-Control (TCP) and the Prometheus endpoint; test sessions use UDP ports
# negotiated per session (see test_port_range above).
EXPOSE 862/tcp 9464/tcp
ENTRYPOINT ["otel-twamp"]
CMD ["agent", "--config", "/etc/otel-twamp/agent.yaml"]
