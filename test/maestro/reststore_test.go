package maestro

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	workv1 "open-cluster-management.io/api/work/v1"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/common"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/store"
	"open-cluster-management.io/sdk-go/pkg/cloudevents/clients/utils"

	"github.com/baton-dev/baton/internal/api/maestro"
	"github.com/baton-dev/baton/pkg/api"
)

// restStore is sdk-go's ClientWatcherStore the way a Maestro source client
// keeps its works: nothing cached, reads go to the server's REST API (label
// selectors sent in Maestro's JSONB search syntax, answers decoded with
// Maestro's generated types and unknown fields disallowed, no opt-in to
// baton's additions), watch events come from the client's own writes and
// the status events it receives.
type restStore struct {
	base   string // REST base URL
	source string

	mu       sync.Mutex
	watchers map[*workWatcher]struct{}
	seen     map[types.UID]string // status last handed to the watchers
}

var _ store.ClientWatcherStore[*workv1.ManifestWork] = (*restStore)(nil)

func newRESTStore(base, source string) *restStore {
	return &restStore{base: base, source: source, watchers: map[*workWatcher]struct{}{}, seen: map[types.UID]string{}}
}

// labelSearch turns a Kubernetes label selector into Maestro's search
// terms on payload->'metadata'->'labels', one term per requirement.
func labelSearch(selector string) ([]string, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, err
	}
	reqs, _ := sel.Requirements()
	const path = "payload->'metadata'->'labels'"
	var terms []string
	for _, r := range reqs {
		k := r.Key()
		vals := r.Values().UnsortedList()
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			b, _ := json.Marshal(map[string]string{k: vals[0]})
			terms = append(terms, fmt.Sprintf("%s@>%s", path, quote(string(b))))
		case selection.NotEquals:
			terms = append(terms, fmt.Sprintf("%s->>%s<>%s", path, quote(k), quote(vals[0])))
		case selection.In, selection.NotIn:
			q := make([]string, len(vals))
			for i, v := range vals {
				q[i] = quote(v)
			}
			op := "in"
			if r.Operator() == selection.NotIn {
				op = "not in"
			}
			terms = append(terms, fmt.Sprintf("%s->>%s %s (%s)", path, quote(k), op, strings.Join(q, ",")))
		case selection.Exists:
			terms = append(terms, fmt.Sprintf("%s->>%s<>null", path, quote(k)))
		case selection.DoesNotExist:
			terms = append(terms, fmt.Sprintf("%s->>%s=null", path, quote(k)))
		default:
			return nil, fmt.Errorf("label operator %q not supported", r.Operator())
		}
	}
	return terms, nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// list pages through the bundles matching search.
func (s *restStore) list(ctx context.Context, search string) ([]*workv1.ManifestWork, error) {
	var works []*workv1.ManifestWork
	for page := 1; ; page++ {
		q := url.Values{"search": {search}, "page": {strconv.Itoa(page)}, "size": {"50"}}
		var l maestro.ResourceBundleList
		if _, err := s.get(ctx, "/resource-bundles?"+q.Encode(), &l); err != nil {
			return nil, err
		}
		for i := range l.Items {
			w, err := toWork(&l.Items[i])
			if err != nil {
				return nil, err
			}
			works = append(works, w)
			s.catchUp(w)
		}
		if len(l.Items) == 0 || len(works) >= l.Total {
			return works, nil
		}
	}
}

// get decodes the answer to GET path strictly into out; a 404 returns
// false and no error.
func (s *restStore) get(ctx context.Context, path string, out any) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+api.BasePath+path, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(out); err != nil {
		return false, fmt.Errorf("GET %s: a strict Maestro client rejects the answer: %w", path, err)
	}
	return true, nil
}

// toWork is the ManifestWork a Maestro source client makes of a bundle.
func toWork(rb *maestro.ResourceBundle) (*workv1.ManifestWork, error) {
	w := &workv1.ManifestWork{}
	if rb.Metadata != nil {
		if err := remarshal(*rb.Metadata, &w.ObjectMeta); err != nil {
			return nil, fmt.Errorf("bundle metadata: %w", err)
		}
	}
	if rb.Id == nil || rb.Name == nil || rb.ConsumerName == nil || rb.Version == nil {
		return nil, fmt.Errorf("bundle without id, name, consumer_name or version: %+v", rb)
	}
	// Maestro's REST name is the id; the work's name is in the metadata.
	w.UID, w.Namespace = types.UID(*rb.Id), *rb.ConsumerName
	if w.Name == "" {
		w.Name = *rb.Name
	}
	w.Generation = int64(*rb.Version)
	w.ResourceVersion = strconv.Itoa(*rb.Version)
	if rb.DeletedAt != nil && w.DeletionTimestamp == nil {
		t := metav1.NewTime(*rb.DeletedAt)
		w.DeletionTimestamp = &t
	}
	if rb.Manifests != nil {
		for _, m := range *rb.Manifests {
			raw, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			w.Spec.Workload.Manifests = append(w.Spec.Workload.Manifests, workv1.Manifest{RawExtension: runtime.RawExtension{Raw: raw}})
		}
	}
	if rb.DeleteOption != nil {
		w.Spec.DeleteOption = &workv1.DeleteOption{}
		if err := remarshal(*rb.DeleteOption, w.Spec.DeleteOption); err != nil {
			return nil, fmt.Errorf("delete_option: %w", err)
		}
	}
	if rb.ManifestConfigs != nil {
		if err := remarshal(*rb.ManifestConfigs, &w.Spec.ManifestConfigs); err != nil {
			return nil, fmt.Errorf("manifest_configs: %w", err)
		}
	}
	if rb.Status != nil {
		var st struct {
			Conditions     []metav1.Condition         `json:"conditions"`
			ResourceStatus []workv1.ManifestCondition `json:"resourceStatus"`
		}
		if err := remarshal(*rb.Status, &st); err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		w.Status.Conditions, w.Status.ResourceStatus.Manifests = st.Conditions, st.ResourceStatus
	}
	return w, nil
}

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func (s *restStore) search(namespace string, opts metav1.ListOptions) (string, error) {
	terms := []string{"source=" + quote(s.source)}
	if namespace != "" && namespace != metav1.NamespaceAll {
		terms = append(terms, "consumer_name="+quote(namespace))
	}
	ls, err := labelSearch(opts.LabelSelector)
	if err != nil {
		return "", err
	}
	return strings.Join(append(terms, ls...), " and "), nil
}

func (s *restStore) List(ctx context.Context, namespace string, opts metav1.ListOptions) (*store.ResourceList[*workv1.ManifestWork], error) {
	search, err := s.search(namespace, opts)
	if err != nil {
		return nil, err
	}
	works, err := s.list(ctx, search)
	if err != nil {
		return nil, err
	}
	return &store.ResourceList[*workv1.ManifestWork]{Items: works}, nil
}

func (s *restStore) ListAll(ctx context.Context) ([]*workv1.ManifestWork, error) {
	return s.list(ctx, "source="+quote(s.source))
}

// Get reads the bundle by the id sdk-go derives from source, namespace and
// name.
func (s *restStore) Get(ctx context.Context, namespace, name string) (*workv1.ManifestWork, bool, error) {
	id := utils.UID(s.source, common.ManifestWorkGR.String(), namespace, name)
	var rb maestro.ResourceBundle
	found, err := s.get(ctx, "/resource-bundles/"+id, &rb)
	if err != nil || !found {
		return nil, false, err
	}
	w, err := toWork(&rb)
	return w, err == nil, err
}

func (s *restStore) HasInitiated() bool { return true }

func (s *restStore) GetWatcher(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return nil, err
	}
	w := &workWatcher{s: s, namespace: namespace, selector: sel, ch: make(chan watch.Event, 10000), done: make(chan struct{})}
	s.mu.Lock()
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			w.Stop()
		case <-w.done:
		}
	}()
	return w, nil
}

// HandleReceivedResource turns a status event into a watch event: Deleted
// once the work's Deleted condition is true, Modified otherwise.
func (s *restStore) HandleReceivedResource(_ context.Context, w *workv1.ManifestWork) error {
	t := watch.Modified
	if meta.IsStatusConditionTrue(w.Status.Conditions, common.ResourceDeleted) {
		t = watch.Deleted
	}
	s.send(watch.Event{Type: t, Object: w})
	return nil
}

func (s *restStore) Add(obj runtime.Object) error {
	return s.send(watch.Event{Type: watch.Added, Object: obj})
}
func (s *restStore) Update(obj runtime.Object) error {
	return s.send(watch.Event{Type: watch.Modified, Object: obj})
}
func (s *restStore) Delete(obj runtime.Object) error {
	return s.send(watch.Event{Type: watch.Deleted, Object: obj})
}

// catchUp hands w to the watchers as Modified when its status differs from
// the last one they were given: watchers are never behind what a read
// returned. This is how they hear a status that changed while the client
// was disconnected — it is already in REST when the client reconnects, so
// the resync's hashes match and the server has nothing to send.
func (s *restStore) catchUp(w *workv1.ManifestWork) {
	s.mu.Lock()
	last, known := s.seen[w.UID]
	s.mu.Unlock()
	if known && last != statusKey(w) {
		_ = s.send(watch.Event{Type: watch.Modified, Object: w})
	}
}

func statusKey(w *workv1.ManifestWork) string {
	b, _ := json.Marshal(w.Status)
	return string(b)
}

func (s *restStore) send(ev watch.Event) error {
	w, ok := ev.Object.(*workv1.ManifestWork)
	if !ok {
		return fmt.Errorf("not a ManifestWork: %T", ev.Object)
	}
	key := statusKey(w)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Type == watch.Deleted {
		delete(s.seen, w.UID)
	} else {
		s.seen[w.UID] = key
	}
	for wt := range s.watchers {
		if wt.namespace != "" && wt.namespace != metav1.NamespaceAll && wt.namespace != w.Namespace {
			continue
		}
		if !wt.selector.Matches(labels.Set(w.Labels)) {
			continue
		}
		select {
		case wt.ch <- watch.Event{Type: ev.Type, Object: w.DeepCopy()}:
		default:
			return fmt.Errorf("watcher of namespace %q is %d events behind", wt.namespace, cap(wt.ch))
		}
	}
	return nil
}

// workWatcher is one Watch of the store.
type workWatcher struct {
	s         *restStore
	namespace string
	selector  labels.Selector
	ch        chan watch.Event
	once      sync.Once
	done      chan struct{}
}

func (w *workWatcher) ResultChan() <-chan watch.Event { return w.ch }

func (w *workWatcher) Stop() {
	w.once.Do(func() {
		w.s.mu.Lock()
		delete(w.s.watchers, w)
		close(w.ch)
		w.s.mu.Unlock()
		close(w.done)
	})
}
