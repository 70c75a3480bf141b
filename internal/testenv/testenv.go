// Package testenv starts a real kube-apiserver and etcd for tests, built from
// the Go module proxy by package kubeassets (cached after the first build).
//
// Use it from TestMain so the control plane is stopped even when tests fail:
//
//	var cfg *rest.Config
//	func TestMain(m *testing.M) { testenv.Main(m, &cfg) }
package testenv

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/baton-dev/baton/internal/kubeassets"
)

// Assets returns the directory holding etcd and kube-apiserver (see
// package kubeassets: KUBEBUILDER_ASSETS, else built once and cached).
func Assets() (string, error) {
	return kubeassets.Ensure(context.Background(), os.Stderr)
}

// Env is a running control plane.
type Env struct {
	Config  *rest.Config
	env     *envtest.Environment
	certDir string
}

// Start starts etcd and kube-apiserver on loopback.
func Start() (*Env, error) {
	// envtest logs through controller-runtime; without a logger it prints
	// a stack trace ("log.SetLogger(...) was never called") after 30 s.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	dir, err := Assets()
	if err != nil {
		return nil, err
	}
	e := &envtest.Environment{BinaryAssetsDirectory: dir}
	api := e.ControlPlane.GetAPIServer()
	// A directory of ours keeps the serving certificate across
	// RestartAPIServer (envtest makes new ones in a directory of its own).
	certDir, err := os.MkdirTemp("", "baton-apiserver-")
	if err != nil {
		return nil, err
	}
	api.CertDir = certDir
	// kube-apiserver drains for longer than tests wait on SIGTERM; after
	// this it is killed, which is a crash as far as its clients can tell.
	api.StopTimeout = 3 * time.Second
	api.Configure().Set("advertise-address", "127.0.0.1")
	api.Configure().Set("endpoint-reconciler-type", "none")
	cfg, err := e.Start()
	if err != nil {
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("starting control plane from %s: %w", dir, err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	return &Env{Config: cfg, env: e, certDir: certDir}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error {
	defer os.RemoveAll(e.certDir)
	return killedIsStopped(e.env.Stop())
}

// killedIsStopped drops envtest's error for a process it had to kill after
// its stop timeout: the process is gone all the same.
func killedIsStopped(err error) error {
	if err != nil && strings.Contains(err.Error(), "timeout waiting for process") &&
		!strings.Contains(err.Error(), "unable to kill") {
		return nil
	}
	return err
}

// StopAPIServer stops kube-apiserver (etcd keeps running): its clients'
// connections close and new ones are refused until StartAPIServer.
// A kube-apiserver that does not exit within 3 s of SIGTERM is killed.
func (e *Env) StopAPIServer() error {
	return killedIsStopped(e.env.ControlPlane.APIServer.Stop())
}

// StartAPIServer starts kube-apiserver again on the same address with the
// same certificates and users, and returns once it is healthy.
func (e *Env) StartAPIServer() error { return e.env.ControlPlane.APIServer.Start() }

// KubeconfigFile writes a kubeconfig for the control plane into dir and
// returns its path, for tests that start baton as a separate process.
func (e *Env) KubeconfigFile(dir string) (string, error) {
	user, err := e.env.ControlPlane.AddUser(envtest.User{Name: "baton-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// Main runs the tests of a package against one control plane, stored in
// *cfg, and stops it afterwards. Under -short no control plane starts and
// *cfg stays nil: tests that need the cluster must skip then.
func Main(m *testing.M, cfg **rest.Config) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	env, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	*cfg = env.Config
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stop:", err)
	}
	os.Exit(code)
}
