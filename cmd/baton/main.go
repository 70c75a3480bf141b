// Command baton delivers bundles of Kubernetes manifests from a server to
// agents in many clusters and reports the live state of every object back.
package main

import (
	"os"

	"github.com/baton-dev/baton/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
