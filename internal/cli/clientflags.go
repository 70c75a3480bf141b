package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/internal/client"
)

// DefaultServer is the server address when neither --server, BATON_SERVER
// nor the config file name one.
const DefaultServer = "http://localhost:8000"

// Environment variables the client verbs read.
const (
	EnvServer = "BATON_SERVER"
	// EnvConfig overrides the config file path (default ~/.config/baton/config.yaml).
	EnvConfig = "BATON_CONFIG"
)

// clientFlags are the flags every client verb shares.
type clientFlags struct {
	server string
}

func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	cmd.Flags().StringVar(&f.server, "server", "",
		"baton server URL (default: $"+EnvServer+", then server: in ~/.config/baton/config.yaml, then "+DefaultServer+")")
	return f
}

// client builds a REST client for the resolved server address.
func (f *clientFlags) client() (*client.Client, error) {
	server, err := resolveServer(f.server)
	if err != nil {
		return nil, err
	}
	return client.New(server)
}

// clientConfig is the client config file.
type clientConfig struct {
	Server string `json:"server"`
}

// resolveServer picks the server address: flag, environment, config file, default.
func resolveServer(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv(EnvServer); env != "" {
		return env, nil
	}
	path, err := configPath()
	if err != nil {
		return DefaultServer, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultServer, nil
	}
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	var cfg clientConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.Server == "" {
		return DefaultServer, nil
	}
	return cfg.Server, nil
}

func configPath() (string, error) {
	if p := os.Getenv(EnvConfig); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "baton", "config.yaml"), nil
}

// isTerminal reports whether w is a terminal (colour is used only then).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
