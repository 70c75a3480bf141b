// Command dns-updater keeps a DNS record equal to the load-balancer IP that
// baton reports for the shared-ingress Service: the runbook's Step 4
// (re-publishing DNS after a management cluster is rebuilt) without a
// human.
//
// It receives baton's webhook (a signed CloudEvent per bundle change, see
// docs/webhooks.md), verifies the X-Baton-Signature header, and rewrites a
// one-line zone file ("NAME TTL IN A IP") whenever the feedback value
// changes; when the Service is gone (no value), the record is removed
// rather than left pointing at a dead IP. Point a DNS server at the file
// (CoreDNS's file plugin, for one) or adapt write() to your DNS API.
//
//	export BATON_WEBHOOK_SECRET=$(openssl rand -hex 24)
//	go run ./examples/dns-updater -listen 127.0.0.1:9000 -record /tmp/router.zone -name router.example.com.
//	baton create subscription dns --url http://127.0.0.1:9000/hook --events feedback,deleted \
//	  --search "name = 'shared-ingress'"
//
// Events are at least once: it ignores a sequence it has already applied.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to receive webhooks on (path /hook)")
	record := flag.String("record", "router.zone", "zone file holding the record")
	name := flag.String("name", "router.example.com.", "record name")
	feedback := flag.String("feedback", "ip", "feedback value holding the IP")
	ttl := flag.Int("ttl", 60, "record TTL in seconds")
	flag.Parse()
	secret := os.Getenv("BATON_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("dns-updater: set BATON_WEBHOOK_SECRET to the subscription's secret")
	}
	u := &updater{secret: secret, path: *record, name: *name, feedback: *feedback, ttl: *ttl}
	http.Handle("POST /hook", u)
	log.Printf("dns-updater: listening on %s, keeping %s in %s", *listen, *name, *record)
	log.Fatal(http.ListenAndServe(*listen, nil))
}

type updater struct {
	secret, path, name, feedback string
	ttl                          int

	mu   sync.Mutex
	last map[string]int64 // subscription → highest sequence applied
}

// event is the part of the CloudEvent the updater reads.
type event struct {
	Subscription string           `json:"subscription"`
	Sequence     string           `json:"sequence"`
	Data         api.WebhookEvent `json:"data"`
}

func (u *updater) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	if err := client.VerifySignature(u.secret, r.Header.Get(api.SignatureHeader), body, time.Now(), 0); err != nil {
		log.Printf("dns-updater: rejected: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	seq, _ := strconv.ParseInt(ev.Sequence, 10, 64)
	if err := u.apply(ev.Subscription, seq, ev.Data); err != nil {
		log.Printf("dns-updater: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError) // baton retries
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apply writes the record for an event unless its sequence was applied.
func (u *updater) apply(sub string, seq int64, d api.WebhookEvent) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		u.last = map[string]int64{}
	}
	if seq > 0 && seq <= u.last[sub] {
		return nil // a redelivery
	}
	ip := ""
	if !d.Bundle.Deleted {
		for _, o := range d.Objects {
			if raw, ok := o.Feedback.New[u.feedback]; ok {
				if err := json.Unmarshal(raw, &ip); err != nil {
					return fmt.Errorf("feedback %s: %w", u.feedback, err)
				}
			}
		}
	}
	if err := u.write(ip); err != nil {
		return err
	}
	u.last[sub] = seq
	log.Printf("dns-updater: %s → %q (bundle %s, change %d)", u.name, ip, d.Bundle.Name, d.ChangeSeq)
	return nil
}

// write replaces the zone file atomically; no IP removes the record.
func (u *updater) write(ip string) error {
	content := ""
	if ip != "" {
		content = fmt.Sprintf("%s %d IN A %s\n", u.name, u.ttl, ip)
	}
	tmp, err := os.CreateTemp(filepath.Dir(u.path), ".record-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		return errors.Join(err, tmp.Close(), os.Remove(tmp.Name()))
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), u.path)
}
