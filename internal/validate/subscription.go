package validate

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/pkg/api"
)

// MinSecretBytes is the shortest webhook secret accepted.
const MinSecretBytes = 16

// Subscription checks a webhook subscription as submitted: a name, an
// absolute http(s) URL, a secret of at least MinSecretBytes, a search
// expression of the list language, known event kinds, header names.
// Messages never quote the secret.
func Subscription(s *api.Subscription) error {
	var es Errors
	es.name("name", s.Name, true)
	if u, err := url.Parse(s.URL); s.URL == "" {
		es.add("url", "is required")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		es.add("url", "want an absolute http:// or https:// URL")
	}
	if len(s.Secret) < MinSecretBytes {
		es.add("secret", "must be at least %d bytes (it signs every delivery)", MinSecretBytes)
	}
	if _, err := search.Parse(s.Search, search.BundleFields); err != nil {
		es.add("search", "%v", err)
	}
	for i, k := range s.Events {
		if !slices.Contains(api.EventKinds, k) {
			es.add("events["+strconv.Itoa(i)+"]", "unknown event kind %q; want one of %v", k, api.EventKinds)
		}
	}
	for k := range s.Headers {
		if k == "" || http.CanonicalHeaderKey(k) == "Content-Type" || http.CanonicalHeaderKey(k) == api.SignatureHeader {
			es.add("headers", "header %q cannot be set", k)
		}
	}
	return es.Err()
}
