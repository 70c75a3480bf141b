// Package kubeassets provides the control-plane binaries (etcd,
// kube-apiserver, kubectl) that cluster tests and `baton dev` run. They are
// built from the Go module proxy by the embedded script kube-assets.sh and
// cached under ${XDG_CACHE_HOME:-~/.cache}/baton, so only the first call on a
// machine takes minutes.
package kubeassets

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed kube-assets.sh
var script []byte

// Ensure returns the directory holding etcd and kube-apiserver, building
// them first when the cache does not have them. The environment variable
// KUBEBUILDER_ASSETS, when set, wins. Build progress is written to progress.
func Ensure(ctx context.Context, progress io.Writer) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	f, err := os.CreateTemp("", "baton-kube-assets-*.sh")
	if err != nil {
		return "", fmt.Errorf("kube assets: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(script); err != nil {
		f.Close()
		return "", fmt.Errorf("kube assets: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("kube assets: %w", err)
	}
	cmd := exec.CommandContext(ctx, "bash", f.Name())
	cmd.Stderr = progress
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("kube assets: building etcd and kube-apiserver: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dir := lines[len(lines)-1]
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("kube assets: script reported %q: %w", dir, err)
	}
	return dir, nil
}
