package maestro

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/proctest"
)

// gone waits until the source client no longer finds work name in c1 and
// its ConfigMap cm is gone from namespace ns.
func (d *deployment) gone(t *testing.T, src *source, ns, name, cm string) {
	t.Helper()
	eventually(t, name+" gone from the server", func() bool {
		_, err := src.holder.ManifestWorks("c1").Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	eventually(t, "ConfigMap "+cm+" gone from the cluster", func() bool {
		_, err := d.kube.CoreV1().ConfigMaps(ns).Get(context.Background(), cm, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func withFeedback(v string) func(*workv1.ManifestWork) bool {
	return func(w *workv1.ManifestWork) bool { return feedback(w, "v") == v }
}

// TestTwoSources: two source clients with a work of the same name each in
// one consumer: each lists and hears only its own.
func TestTwoSources(t *testing.T) {
	d, ns, ctx := deployed(t, "sources")
	var recs []*recorder
	var srcs []*source
	for _, id := range []string{"cs1", "cs2"} {
		src := d.sourceClient(ctx, id)
		w, err := src.holder.ManifestWorks("c1").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		recs, srcs = append(recs, record(w)), append(srcs, src)
		if _, err := src.holder.ManifestWorks("c1").Create(ctx, configMapWork("shared", ns, id, id, nil), metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: create: %v", id, err)
		}
	}
	for i, id := range []string{"cs1", "cs2"} {
		eventually(t, id+" hears its work's status", func() bool { return recs[i].has(watch.Modified, "shared", withFeedback(id)) })
		l, err := srcs[i].holder.ManifestWorks("c1").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 1 || feedback(&l.Items[0], "v") != id {
			t.Errorf("%s lists %d works (%v), want only its own", id, len(l.Items), l.Items)
		}
		other := "cs2"
		if id == "cs2" {
			other = "cs1"
		}
		if recs[i].has(watch.Modified, "shared", withFeedback(other)) {
			t.Errorf("%s heard the status of %s's work", id, other)
		}
	}
}

// TestDeletes: create-then-immediate-delete leaves nothing behind;
// delete-and-recreate of one name ends with the new work applied and its
// status heard by the source.
func TestDeletes(t *testing.T) {
	d, ns, ctx, src, rec := watched(t, "deletes")

	if _, err := src.holder.ManifestWorks("c1").Create(ctx, configMapWork("brief", ns, "brief", "v1", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := src.holder.ManifestWorks("c1").Delete(ctx, "brief", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	d.gone(t, src, ns, "brief", "brief")

	if _, err := src.holder.ManifestWorks("c1").Create(ctx, configMapWork("again", ns, "again", "first", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first incarnation's status", func() bool { return rec.has(watch.Modified, "again", withFeedback("first")) })
	if err := src.holder.ManifestWorks("c1").Delete(ctx, "again", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the source hears the delete confirmed", func() bool {
		return rec.has(watch.Deleted, "again", func(w *workv1.ManifestWork) bool { return len(w.Status.Conditions) > 0 })
	})
	d.gone(t, src, ns, "again", "again")
	if _, err := src.holder.ManifestWorks("c1").Create(ctx, configMapWork("again", ns, "again", "second", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("recreate: %v", err)
	}
	// As in Maestro, the recreated work starts again at version 1, in
	// REST and in its status events.
	eventually(t, "the recreated work's status, at version 1, heard by the source", func() bool {
		return rec.has(watch.Modified, "again", func(w *workv1.ManifestWork) bool { return feedback(w, "v") == "second" && w.Generation == 1 })
	})
	got, err := src.holder.ManifestWorks("c1").Get(ctx, "again", metav1.GetOptions{})
	if err != nil || !applied(got) || got.CreationTimestamp.IsZero() || got.Generation != 1 {
		t.Fatalf("recreated work: %v, %+v", err, got)
	}
	if _, err := src.holder.ManifestWorks("c1").Patch(ctx, "again", types.MergePatchType, []byte(`{"metadata":{"labels":{"life":"two"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("update of the recreated work at version 1: %v", err)
	}
	eventually(t, "the recreated work at version 2", func() bool {
		got, err := src.holder.ManifestWorks("c1").Get(ctx, "again", metav1.GetOptions{})
		return err == nil && got.Generation == 2 && got.Labels["life"] == "two"
	})
	if cm, err := d.kube.CoreV1().ConfigMaps(ns).Get(ctx, "again", metav1.GetOptions{}); err != nil || cm.Data["v"] != "second" {
		t.Errorf("ConfigMap after the recreate: %v %v", cm.Data, err)
	}
}

// TestOutdatedUpdate: an update carrying an older version than the server's
// is refused with Maestro's text, as a Conflict, and changes nothing.
func TestOutdatedUpdate(t *testing.T) {
	d, ns, ctx := deployed(t, "outdated")
	src := d.sourceClient(ctx, "cs")
	if _, err := src.holder.ManifestWorks("c1").Create(ctx, configMapWork("w", ns, "w", "v1", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	merge := func(patch string) error {
		_, err := src.holder.ManifestWorks("c1").Patch(ctx, "w", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}
	if err := merge(`{"metadata":{"labels":{"step":"two"}}}`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "version 2", func() bool {
		got, err := src.holder.ManifestWorks("c1").Get(ctx, "w", metav1.GetOptions{})
		return err == nil && got.Generation == 2
	})
	err := merge(`{"metadata":{"labels":{"step":"old"},"annotations":{"cloudevents.open-cluster-management.io/resourceversion":"1"}}}`)
	if err == nil || !strings.Contains(err.Error(), "the resource version is not the latest") {
		t.Fatalf("outdated update: %v, want the resource version is not the latest", err)
	}
	if !apierrors.IsConflict(err) {
		t.Errorf("outdated update: reason %q, want Conflict", apierrors.ReasonForError(err))
	}
	got, err := src.holder.ManifestWorks("c1").Get(ctx, "w", metav1.GetOptions{})
	if err != nil || got.Generation != 2 || got.Labels["step"] != "two" {
		t.Errorf("after the refused update: %v, generation %d, labels %v", err, got.Generation, got.Labels)
	}
}

// TestStatusResyncAfterServerRestart: the server is killed, the applied
// object changes while it is down, the server comes back: the same source
// client reconnects by itself and hears the new status.
func TestStatusResyncAfterServerRestart(t *testing.T) {
	d, ns, ctx, src, rec := watched(t, "resync")
	// Observed, not applied: the agent would put back a change to what it
	// applies.
	if _, err := d.kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "w"},
		Data: map[string]string{"v": "v1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.holder.ManifestWorks("c1").Create(ctx, readOnlyWork("w", ns, "w"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first status", func() bool { return rec.has(watch.Modified, "w", withFeedback("v1")) })

	d.server.Kill()
	cm, err := d.kube.CoreV1().ConfigMaps(ns).Get(ctx, "w", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["v"] = "while-down"
	if _, err := d.kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d.server.Restart()
	proctest.WaitReady(t, d.rest+"/readyz", bound)
	inREST := eventually(t, "the change made while the server was down, read by the source client", func() bool {
		got, err := src.holder.ManifestWorks("c1").Get(ctx, "w", metav1.GetOptions{})
		return err == nil && feedback(got, "v") == "while-down"
	})
	if inREST > healBound {
		t.Errorf("the change read %v after the server was ready, want under %v", inREST, healBound)
	}
	heard := eventually(t, "the change heard by the same source client's watcher after it reconnected", func() bool {
		return rec.has(watch.Modified, "w", withFeedback("while-down"))
	})
	t.Logf("after the server was ready: read in %v, heard by the watcher %v later", inREST, heard)
}
