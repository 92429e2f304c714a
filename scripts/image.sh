#!/usr/bin/env bash
# Build the ringkv container image: a static binary (CGO_ENABLED=0) with its
# version and VCS commit stamped, in an image FROM scratch (deploy/Dockerfile).
#
#   scripts/image.sh                 # image ringkv:latest and ringkv:<version>
#   IMAGE=myrepo/ringkv scripts/image.sh
#   GOARCH=arm64 scripts/image.sh    # another architecture (cross-compiled, labelled linux/arm64)
#   OUT=$(mktemp -d) scripts/image.sh  # build context elsewhere than bin/image
#
# Prints the image reference on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${IMAGE:-ringkv}"
goarch="${GOARCH:-$(go env GOARCH)}"
# The build context: OUT if given (it holds only what the image needs),
# else the repository root, where .dockerignore sends only bin/image/.
if [ -n "${OUT:-}" ]; then
	context="$OUT"
else
	context=.
fi
out="$context/bin/image"
rm -rf "$out"
mkdir -p "$out/data"
# 0700: the node tightens its data directory to storage.file_mode anyway.
chmod 700 "$out/data"

# The release is node.Version; the commit is stamped with -X (Go's own VCS
# stamping misses git worktrees), "-dirty" when the tree has changes.
version="$(sed -n 's/^const Version = "\([^"]*\)".*$/\1/p' node/backend.go)"
if [ -z "$version" ]; then
	echo "image.sh: no const Version in node/backend.go" >&2; exit 1
fi
commit=unknown
if rev="$(git rev-parse --short=12 HEAD 2>/dev/null)"; then
	commit="$rev"
	if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
		commit="$rev-dirty"
	fi
fi
CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" go build -trimpath -buildvcs=false \
	-ldflags="-s -w -X main.stampedCommit=$commit" -o "$out/ringkv" ./cmd/ringkv

# --platform: the image's config names the binary's architecture, not the
# build machine's.
docker build --quiet --platform "linux/$goarch" -f deploy/Dockerfile \
	--build-arg VERSION="$version" --build-arg COMMIT="$commit" \
	-t "$image:latest" -t "$image:$version" "$context" >/dev/null
echo "built $image:latest ($image:$version, linux/$goarch, commit $commit)" >&2
echo "$image:latest"
