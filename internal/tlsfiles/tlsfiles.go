// Package tlsfiles serves TLS certificates from PEM files and picks up
// rotated files without a restart: every handshake checks (at most once
// per CheckInterval) whether the files changed and loads them again. A
// broken rotation (a key that does not match, a half-written file) keeps
// the previous certificate in use and is logged.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval bounds how often the files are looked at.
const CheckInterval = time.Second

// KeyPair is a certificate and key loaded from files and reloaded when
// they change. Safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// Load reads the pair once; a missing or mismatched pair is an error.
func Load(certFile, keyFile string, log *slog.Logger) (*KeyPair, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &KeyPair{certFile: certFile, keyFile: keyFile, log: log}
	if err := k.reload(); err != nil {
		return nil, err
	}
	return k, nil
}

func stampOf(files ...string) string {
	s := ""
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			s += f + ":missing;"
			continue
		}
		s += fmt.Sprintf("%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
	}
	return s
}

func (k *KeyPair) reload() error {
	stamp := stampOf(k.certFile, k.keyFile)
	pair, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("tls key pair %s: %w", k.certFile, err)
	}
	k.cert, k.stamp = &pair, stamp
	return nil
}

// Certificate returns the current certificate, reloading changed files.
func (k *KeyPair) Certificate() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) >= CheckInterval {
		k.checked = now
		if stampOf(k.certFile, k.keyFile) != k.stamp {
			old := k.stamp
			if err := k.reload(); err != nil {
				k.stamp = stampOf(k.certFile, k.keyFile) // do not retry until the files change again
				k.log.Error("tls: reloading the certificate failed; the previous one stays in use", "cert", k.certFile, "err", err)
			} else if old != "" {
				k.log.Info("tls: certificate reloaded", "cert", k.certFile)
			}
		}
	}
	return k.cert
}

// GetCertificate is for tls.Config.GetCertificate (servers).
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (clients).
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// ServerConfig is a TLS 1.2+ server configuration serving k. With
// clientCAs set, client certificates are verified against the pool it
// returns at each handshake (so a reloaded CA takes effect) and are
// optional: callers without one may still present a bearer token.
func ServerConfig(k *KeyPair, clientCAs func() *x509.CertPool) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: k.GetCertificate}
	if clientCAs == nil {
		return base
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		// ALPN for both HTTP/2 (gRPC) and HTTP/1.1 (REST clients).
		c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: k.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
		if pool := clientCAs(); pool != nil {
			c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
		}
		return c, nil
	}
	return base
}

// CAPool reads a PEM bundle of CA certificates.
func CAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate", file)
	}
	return pool, nil
}

// ClientConfig is a TLS 1.2+ client configuration: caFile verifies the
// server (empty: the system roots; verification is never skipped);
// certFile and keyFile, when set, are the client certificate, reloaded
// when the files change (a rotated certificate is used from the next
// connection on, without a restart).
func ClientConfig(caFile, certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("tls: a client certificate and its key go together")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := CAPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: server CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		kp, err := Load(certFile, keyFile, log)
		if err != nil {
			return nil, fmt.Errorf("tls: client key pair: %w", err)
		}
		cfg.GetClientCertificate = kp.GetClientCertificate
	}
	return cfg, nil
}
