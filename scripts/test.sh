#!/usr/bin/env bash
# Every test: installs what is missing (idempotent), builds, then runs the
# Go unit tests, the preload layer's tests through real programs, and the
# integration tests against a private containerd.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

if [[ $(id -u) != 0 ]]; then
	echo "test: run as root (the tests start containerd, runc and CRIU)" >&2
	exit 1
fi
scripts/install-stack.sh
make all
go vet ./...
# One package at a time: the integration packages start daemons and
# containers and must not overlap.
go test -count=1 -p 1 ./...
