#!/usr/bin/env bash
# make demo: the runbook's stale shared-ingress incident on `baton dev`, with
# a timeline of what baton reported and when.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x bin/baton ]] || go build -o bin/baton ./cmd/baton
exec go run ./hack/demo "$@"
