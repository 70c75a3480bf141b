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
	// EnvToken is the bearer token (after --token, before token: in the config file).
	EnvToken = "BATON_TOKEN"
)

// clientFlags are the flags every client verb shares.
type clientFlags struct {
	server string
	token  string
}

func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	cmd.Flags().StringVar(&f.server, "server", "",
		"baton server URL (default: $"+EnvServer+", then server: in ~/.config/baton/config.yaml, then "+DefaultServer+")")
	cmd.Flags().StringVar(&f.token, "token", "",
		"bearer token for a server with --auth-config (default: $"+EnvToken+", then token: in ~/.config/baton/config.yaml)")
	return f
}

// client builds a REST client for the resolved server address.
func (f *clientFlags) client() (*client.Client, error) {
	server, err := resolveServer(f.server)
	if err != nil {
		return nil, err
	}
	token, err := resolveToken(f.token)
	if err != nil {
		return nil, err
	}
	return client.New(server, client.WithToken(token))
}

// clientConfig is the client config file.
type clientConfig struct {
	Server string `json:"server"`
	// Token is the bearer token; keep the file private (mode 0600).
	Token string `json:"token,omitempty"`
}

// resolveToken picks the bearer token: flag, environment, config file, none.
func resolveToken(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv(EnvToken); env != "" {
		return env, nil
	}
	cfg, _, err := readClientConfig()
	return cfg.Token, err
}

// readClientConfig reads the config file; a missing file is an empty config.
func readClientConfig() (clientConfig, string, error) {
	var cfg clientConfig
	path, err := configPath()
	if err != nil {
		return cfg, "", nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return cfg, path, fmt.Errorf("config %s: %w", path, err)
	}
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return cfg, path, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, path, nil
}

// resolveServer picks the server address: flag, environment, config file, default.
func resolveServer(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv(EnvServer); env != "" {
		return env, nil
	}
	cfg, _, err := readClientConfig()
	if err != nil {
		return "", err
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
