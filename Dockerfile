# syntax=docker/dockerfile:1
# Ferry's image: `docker build --build-arg VERSION=$(git describe --tags --always) -t REGISTRY/ferry:TAG .`
#
# The final stage is Debian slim rather than distroless: Ferry runs the git CLI (and ssh for
# git@ remotes) to fetch repositories, so both must be in the image.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X github.com/ferrycd/ferry/internal/buildinfo.Version=$VERSION -X github.com/ferrycd/ferry/internal/buildinfo.Commit=$COMMIT" \
      -o /out/ferry ./cmd/ferry \
 && CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/ferry-exec ./cmd/ferry-exec

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot \
 && install -d -o 65532 -g 65532 /var/lib/ferry
COPY --from=build /out/ferry /usr/local/bin/ferry
# `ferry exec` alone; the secrets webhook's init container copies it into Pods.
COPY --from=build /out/ferry-exec /usr/local/bin/ferry-exec
USER 65532:65532
ENV HOME=/home/nonroot
WORKDIR /var/lib/ferry
VOLUME /var/lib/ferry
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ferry"]
CMD ["server", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/ferry"]
