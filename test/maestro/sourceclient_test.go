package maestro

import (
	"context"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	workv1client "open-cluster-management.io/api/client/work/clientset/versioned/typed/work/v1"
	workv1 "open-cluster-management.io/api/work/v1"
)

func applied(w *workv1.ManifestWork) bool {
	return meta.IsStatusConditionTrue(w.Status.Conditions, workv1.WorkApplied)
}

// TestListAndWatchByLabel: the source client lists by label with every
// selector form Maestro's client translates (equality, inequality, in,
// notin, exists, does not exist); the answers carry the agents' status;
// watchers see only their namespace and labels, a stopped watcher is
// closed and a new one gets what follows.
func TestListAndWatchByLabel(t *testing.T) {
	d := newDeployment(t)
	d.consumer("c1")
	d.consumer("c2")
	ns := d.namespace("labels")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := d.sourceClient(ctx, "cs")
	// sdk-go's holder keeps one namespace for all its clients
	// (ManifestWorks(ns) sets it): ask for the client before each call.
	works := func() workv1client.ManifestWorkInterface { return src.holder.ManifestWorks("c1") }

	byApp, err := works().Watch(ctx, metav1.ListOptions{LabelSelector: "app=a"})
	if err != nil {
		t.Fatal(err)
	}
	appA := record(byApp)
	c2Watch, err := src.holder.ManifestWorks("c2").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	onlyC2 := record(c2Watch)

	for name, lbls := range map[string]map[string]string{
		"w-a": {"app": "a", "tier": "web"},
		"w-b": {"app": "b", "tier": "web"},
		"w-c": {"app": "c", "tier": "db"},
		"w-d": {"app": "d"},
	} {
		if _, err := works().Create(ctx, configMapWork(name, ns, name, "v1", lbls), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	if _, err := src.holder.ManifestWorks("c2").Create(ctx, configMapWork("w-other", ns, "other", "v1", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	list := func(selector string) string {
		t.Helper()
		l, err := works().List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatalf("list %q: %v", selector, err)
		}
		var names []string
		for _, w := range l.Items {
			names = append(names, w.Name)
		}
		sort.Strings(names)
		return strings.Join(names, ",")
	}
	for selector, want := range map[string]string{
		"":                "w-a,w-b,w-c,w-d",
		"app=a":           "w-a",
		"app==a,tier=web": "w-a",
		"tier!=db":        "w-a,w-b", // SQL NULL semantics, as Maestro's PostgreSQL answers
		"app in (a,c)":    "w-a,w-c",
		"app notin (a,b)": "w-c,w-d",
		"tier":            "w-a,w-b,w-c",
		"!tier":           "w-d",
		"app in (a),tier": "w-a",
		"app=nope":        "",
	} {
		if got := list(selector); got != want {
			t.Errorf("list %q = [%s], want [%s]", selector, got, want)
		}
	}

	// List with results: every item carries its agent's status.
	eventually(t, "all four works applied with feedback in the list", func() bool {
		l, err := works().List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 4 {
			return false
		}
		for i := range l.Items {
			w := &l.Items[i]
			if !applied(w) || feedback(w, "v") != "v1" || w.CreationTimestamp.IsZero() {
				return false
			}
		}
		return true
	})
	eventually(t, "the app=a watcher sees w-a's status", func() bool {
		return appA.has(watch.Modified, "w-a", func(w *workv1.ManifestWork) bool { return feedback(w, "v") == "v1" })
	})
	if got := appA.names(); len(got) != 1 || !got["w-a"] {
		t.Errorf("the app=a watcher saw %v, want only w-a", got)
	}
	eventually(t, "the c2 watcher sees w-other's status", func() bool {
		return onlyC2.has(watch.Modified, "w-other", applied)
	})
	if got := onlyC2.names(); len(got) != 1 || !got["w-other"] {
		t.Errorf("the c2 watcher saw %v, want only w-other", got)
	}

	// A stopped watcher is closed; a new one sees what follows.
	byApp.Stop()
	eventually(t, "the stopped watcher's channel closed", func() bool {
		appA.mu.Lock()
		defer appA.mu.Unlock()
		return appA.closed
	})
	again, err := works().Watch(ctx, metav1.ListOptions{LabelSelector: "app=a"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Stop()
	appA2 := record(again)
	patch := []byte(`{"spec":{"workload":{"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w-a","namespace":"` + ns + `"},"data":{"v":"v2"}}]}}}`)
	if _, err := works().Patch(ctx, "w-a", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the recreated watcher sees w-a's new status", func() bool {
		return appA2.has(watch.Modified, "w-a", func(w *workv1.ManifestWork) bool { return feedback(w, "v") == "v2" })
	})
	if cm, err := d.kube.CoreV1().ConfigMaps(ns).Get(ctx, "w-a", metav1.GetOptions{}); err != nil || cm.Data["v"] != "v2" {
		t.Errorf("ConfigMap w-a after the patch: %v %v", cm.Data, err)
	}
}
