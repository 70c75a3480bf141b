#!/usr/bin/env bash
# Runs every native Go fuzz target of baton for FUZZTIME each (default 10m),
# one after another (FUZZ_ONLY=<Target> runs one). `make fuzz` calls it;
# `make fuzz-smoke` passes a few seconds. A failing target does not stop the
# others; Go saves the failing input under the package's
# testdata/fuzz/<Target>/, where it stays as a regression case that every
# `go test` runs.
set -uo pipefail
status=0
FUZZTIME=${FUZZTIME:-10m}
GO=${GO:-go}
targets=(
	"./internal/api/rest FuzzBundleBody"
	"./internal/api/search FuzzParse"
	"./internal/evaluate FuzzEvalPath"
	"./internal/transport/grpc FuzzDecodeProtobufEvent"
	"./internal/transport/mqtt FuzzDecodeJSONEvent"
	"./internal/cli FuzzReadBundles"
)
for t in "${targets[@]}"; do
	set -- $t
	if [[ -n ${FUZZ_ONLY:-} && $2 != "$FUZZ_ONLY" ]]; then continue; fi
	echo "fuzz $2 ($1) for $FUZZTIME"
	$GO test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" -parallel "${FUZZ_PARALLEL:-1}" "$1" || status=1
done
exit $status
