# syntax=docker/dockerfile:1
# Tutti: one image with both binaries.
#   tutti         API server and CLI (`tutti serve`, `tutti migrate`, ...); the default command
#   tutti-worker  the Temporal worker
# Build: docker build -t tutti:local .     (docker-compose.yml builds it for you)

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Dependencies first, so source edits don't re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# timetzdata embeds the time zone database: contacts' local-time sends need it.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -tags timetzdata -ldflags="-s -w" -o /out/tutti ./starter && \
    go build -tags timetzdata -ldflags="-s -w" -o /out/tutti-worker ./worker

# Static binaries on distroless: CA certificates and tzdata, no shell, runs as
# the unprivileged "nonroot" user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tutti /out/tutti-worker /usr/local/bin/
# Inside a container the API must listen on all interfaces.
ENV TUTTI_API_ADDR=0.0.0.0:8080
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT []
CMD ["tutti", "serve"]
