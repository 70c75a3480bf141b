#!/usr/bin/env bash
# kube-assets.sh builds the control-plane binaries the cluster tests need
# (etcd, kube-apiserver, kubectl) from the Go module proxy and caches them.
#
# Usage: internal/kubeassets/kube-assets.sh [OUT_DIR]
#   Prints the assets directory on stdout (the value for KUBEBUILDER_ASSETS);
#   progress goes to stderr. A second run with the same versions is instant.
#
# Knobs: KUBE_VERSION (default v1.37.2), WITH_KUBECTL (1), BATON_CACHE
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/baton). The cache lives outside the
# repository because the wrapper is a Go module of its own.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
WITH_KUBECTL=${WITH_KUBECTL:-1}
CACHE=${BATON_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/baton}
export GOWORK=off GOFLAGS=-modcacherw GO111MODULE=on CGO_ENABLED=0

log() { echo "kube-assets: $*" >&2; }
command -v go >/dev/null || { log "go not found in PATH"; exit 1; }
[[ $KUBE_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { log "KUBE_VERSION must look like v1.37.2, got $KUBE_VERSION"; exit 1; }
MINOR=${BASH_REMATCH[1]}
STAGING="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
KEY="$KUBE_VERSION-kubectl$WITH_KUBECTL-$(go env GOOS)-$(go env GOARCH)"
BIN="$CACHE/kube/$KEY"
OUT=${1:-$BIN}

publish() {
  if [[ $OUT != "$BIN" ]]; then
    mkdir -p "$OUT"
    for b in etcd kube-apiserver kubectl; do
      [[ -x $BIN/$b ]] && { ln -f "$BIN/$b" "$OUT/$b" 2>/dev/null || cp -f "$BIN/$b" "$OUT/$b"; }
    done
  fi
  (cd "$OUT" && echo "$PWD")
}

if [[ -f $BIN/.complete ]]; then publish; exit 0; fi

# One build per version at a time: concurrent test binaries (go test -p N)
# and a concurrent `make kube-assets` wait for the first build instead of
# starting their own in the same source folder.
if command -v flock >/dev/null; then
  mkdir -p "$CACHE/kube"
  exec 9>"$CACHE/kube/.lock-$KEY"
  if ! flock -n 9; then
    log "another build of $KEY is running; waiting for it"
    flock 9
  fi
  if [[ -f $BIN/.complete ]]; then publish; exit 0; fi
fi

start=$(date +%s)
SRC="$CACHE/kube-src/$KEY"
mkdir -p "$SRC" "$BIN"
cd "$SRC"
rm -f go.mod go.sum tools.go

log "resolving k8s.io/kubernetes@$KUBE_VERSION"
KMOD=$(cd / && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*$/\1/p')
[[ -f $KMOD ]] || { log "cannot fetch go.mod of k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
GOV=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$KMOD" | head -1)
MODS=$(grep -E '=>[[:space:]]+\./staging/src/' "$KMOD" | awk '{print $1}' | sort -u)

# Kubernetes' own go.mod replaces its staging modules with local paths, which Go
# ignores in a dependency; re-create them with the published versions.
{
  printf 'module batonkubeassets\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "${GOV:-1.25.0}" "$KUBE_VERSION"
  for m in $MODS; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING"; done
  printf ')\n'
} > go.mod
{
  printf '//go:build tools\n\npackage tools\n\nimport (\n'
  printf '\t_ "go.etcd.io/etcd/server/v3"\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n'
  [[ $WITH_KUBECTL == 1 ]] && printf '\t_ "k8s.io/kubernetes/cmd/kubectl"\n'
  printf ')\n'
} > tools.go
log "downloading modules (about 145 MB on a cold module cache)"
go mod tidy

LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done
log "[1/3] building kube-apiserver $KUBE_VERSION (about 3 minutes cold on 2 cores)"
go build -trimpath -ldflags "$LDF" -o "$BIN/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
log "[2/3] building etcd"
go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
if [[ $WITH_KUBECTL == 1 ]]; then
  log "[3/3] building kubectl"
  go build -trimpath -ldflags "$LDF" -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl
fi
touch "$BIN/.complete"
log "built in $(( $(date +%s) - start )) s into $BIN"
publish
