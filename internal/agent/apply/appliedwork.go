package apply

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/yaml"
)

// AppliedManifestWork records mirror the bundle records for tools that
// look for what an Open Cluster Management work agent applied: one
// cluster-scoped AppliedManifestWork (work.open-cluster-management.io/v1)
// per bundle, named "<hub hash>-<bundle id>" (OCM's "<hub hash>-<work
// name>": a bundle's id is its work's name on the agent), carrying the
// bundle's labels, spec.hubHash, spec.agentID (the consumer) and
// spec.manifestWorkName, and status.appliedResources: every object the
// record holds, with its uid. They are written after every Apply and
// Delete pass and removed when a Delete completes; they are a mirror, not
// a source: the agent never reads them back except to remove those of
// bundles it no longer holds (SyncAppliedWorks). The CRD is installed when
// the cluster does not serve it.

var (
	//go:embed crd/appliedmanifestworks.yaml
	appliedWorkCRD []byte

	appliedWorks = schema.GroupVersionResource{Group: "work.open-cluster-management.io", Version: "v1", Resource: "appliedmanifestworks"}
	crds         = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// LabelBundle labels an AppliedManifestWork with its bundle id.
const LabelBundle = "baton.dev/bundle"

// HubHash is the hub identity OCM puts in AppliedManifestWork names: the
// hex SHA-256 of the hub's address.
func HubHash(hub string) string {
	sum := sha256.Sum256([]byte(hub))
	return hex.EncodeToString(sum[:])
}

// AppliedWorkName is the AppliedManifestWork name of a bundle.
func AppliedWorkName(hubHash, bundleID string) string {
	name := hubHash + "-" + bundleID
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(bundleID))
	return hubHash + "-" + hex.EncodeToString(sum[:16])
}

// appliedWork renders the AppliedManifestWork of a record.
func (a *Applier) appliedWork(r *Record) (*unstructured.Unstructured, error) {
	labels := maps.Clone(r.Meta.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelAgent] = agentLabel(a.opts.AgentName)
	labels[LabelManaged] = "baton-agent"
	if len(validation.IsValidLabelValue(r.BundleID)) == 0 {
		labels[LabelBundle] = r.BundleID
	}
	w := &workv1.AppliedManifestWork{
		TypeMeta:   metav1.TypeMeta{APIVersion: workv1.GroupVersion.String(), Kind: "AppliedManifestWork"},
		ObjectMeta: metav1.ObjectMeta{Name: AppliedWorkName(a.opts.HubHash, r.BundleID), Labels: labels},
		Spec:       workv1.AppliedManifestWorkSpec{HubHash: a.opts.HubHash, AgentID: a.opts.AgentName, ManifestWorkName: r.BundleID},
	}
	for _, o := range r.Objects {
		w.Status.AppliedResources = append(w.Status.AppliedResources, workv1.AppliedManifestResourceMeta{
			ResourceIdentifier: workv1.ResourceIdentifier{Group: o.Group, Resource: o.Resource, Namespace: o.Namespace, Name: o.Name},
			Version:            o.Version, UID: string(o.UID)})
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(w)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// syncAppliedWork makes the bundle's AppliedManifestWork match r (nil:
// removes it). Failures are logged and retried at the next call: the
// mirror never blocks applying or deleting.
func (a *Applier) syncAppliedWork(ctx context.Context, bundleID string, r *Record) {
	if a.appliedWorksOff() {
		return
	}
	a.mirrorFailed(bundleID, a.writeAppliedWork(ctx, bundleID, r))
}

// mirrorFailed logs a failed mirror write of bundleID (empty: of the CRD)
// and turns the mirror off when the agent is not allowed to keep it.
func (a *Applier) mirrorFailed(bundleID string, err error) {
	switch {
	case err == nil:
	case apierrors.IsForbidden(err):
		// The agent may not install or write them: say so once, not at
		// every apply.
		a.mu.Lock()
		a.amwForbidden = true
		a.mu.Unlock()
		a.opts.Logger.Warn("applier: AppliedManifestWork records are off: the agent is not allowed to write them (or to install their CRD); grant it or set --applied-manifestworks=false",
			"err", err)
	default:
		a.opts.Logger.Warn("applier: AppliedManifestWork not in step with the record; retried at the next pass",
			"bundle", bundleID, "err", err)
	}
}

// appliedWorksOff says whether AppliedManifestWork records are not kept:
// turned off, or forbidden to the agent.
func (a *Applier) appliedWorksOff() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.opts.DisableAppliedWorks || a.amwForbidden
}

func (a *Applier) writeAppliedWork(ctx context.Context, bundleID string, r *Record) error {
	c := a.dyn.Resource(appliedWorks)
	name := AppliedWorkName(a.opts.HubHash, bundleID)
	if r == nil {
		err := c.Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("AppliedManifestWork %s: delete: %w", name, err)
		}
		return nil
	}
	if err := a.ensureAppliedWorkCRD(ctx); err != nil {
		return err
	}
	want, err := a.appliedWork(r)
	if err != nil {
		return err
	}
	live, err := c.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if live, err = c.Create(ctx, want, metav1.CreateOptions{FieldManager: a.opts.FieldManager}); err != nil {
			return fmt.Errorf("AppliedManifestWork %s: create: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("AppliedManifestWork %s: get: %w", name, err)
	case !reflect.DeepEqual(live.GetLabels(), want.GetLabels()) || !reflect.DeepEqual(live.Object["spec"], want.Object["spec"]):
		want.SetResourceVersion(live.GetResourceVersion())
		if live, err = c.Update(ctx, want, metav1.UpdateOptions{FieldManager: a.opts.FieldManager}); err != nil {
			return fmt.Errorf("AppliedManifestWork %s: update: %w", name, err)
		}
	}
	if reflect.DeepEqual(live.Object["status"], want.Object["status"]) {
		return nil
	}
	live.Object["status"] = want.Object["status"]
	if _, err := c.UpdateStatus(ctx, live, metav1.UpdateOptions{FieldManager: a.opts.FieldManager}); err != nil {
		return fmt.Errorf("AppliedManifestWork %s: update status: %w", name, err)
	}
	return nil
}

// ensureAppliedWorkCRD installs the AppliedManifestWork CRD when the
// cluster lacks it and waits until it is Established; once per Applier.
func (a *Applier) ensureAppliedWorkCRD(ctx context.Context) error {
	return a.amwReady.do(func() error { return a.installAppliedWorkCRD(ctx) })
}

func (a *Applier) installAppliedWorkCRD(ctx context.Context) error {
	c := a.dyn.Resource(crds)
	var want unstructured.Unstructured
	if err := yaml.Unmarshal(appliedWorkCRD, &want.Object); err != nil {
		return fmt.Errorf("AppliedManifestWork CRD: %w", err)
	}
	live, err := c.Get(ctx, want.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		live, err = c.Create(ctx, &want, metav1.CreateOptions{FieldManager: a.opts.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			live, err = c.Get(ctx, want.GetName(), metav1.GetOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("CustomResourceDefinition %s: %w", want.GetName(), err) // keeps IsForbidden
	}
	ok, err := a.wait(ctx, a.opts.EstablishTimeout, pollInterval, func() (bool, error) {
		if established(live) {
			return true, nil
		}
		live, err = c.Get(ctx, want.GetName(), metav1.GetOptions{})
		return err == nil && established(live), nil
	})
	if err != nil || !ok {
		return errors.Join(fmt.Errorf("CustomResourceDefinition %s: not Established within %v", want.GetName(), a.opts.EstablishTimeout), err)
	}
	// The apiserver holds creates of a just Established resource for
	// about two seconds (kubernetes#99199). Pay that here, at start, with
	// a dry-run create, rather than in the first apply's mirror write.
	probe, err := a.appliedWork(&Record{BundleID: "probe"})
	if err == nil {
		_, err = a.dyn.Resource(appliedWorks).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: a.opts.FieldManager})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		a.opts.Logger.Debug("applier: AppliedManifestWork dry-run create", "err", err)
	}
	return nil
}

// SyncAppliedWorks brings every AppliedManifestWork of this agent in step
// with the records: written for each record, removed for bundles with no
// record (a crash between dropping a record and its mirror).
//
// It installs the CRD first, also when there are no records: the agent
// calls it at start, before it says Hello, so that the first apply does
// not wait seconds for a new CRD to be Established.
func (a *Applier) SyncAppliedWorks(ctx context.Context, recs []Record) error {
	if a.appliedWorksOff() {
		return nil
	}
	if err := a.ensureAppliedWorkCRD(ctx); err != nil {
		a.mirrorFailed("", err)
		if a.appliedWorksOff() {
			return nil
		}
		return err
	}
	held := map[string]bool{}
	var errs []error
	for i := range recs {
		r := &recs[i]
		held[AppliedWorkName(a.opts.HubHash, r.BundleID)] = true
		if err := a.writeAppliedWork(ctx, r.BundleID, r); err != nil {
			errs = append(errs, err)
		}
	}
	sel := LabelAgent + "=" + agentLabel(a.opts.AgentName) + "," + LabelManaged + "=baton-agent"
	list, err := a.dyn.Resource(appliedWorks).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("AppliedManifestWorks: list: %w", err))...)
	}
	for _, w := range list.Items {
		if !held[w.GetName()] && strings.HasPrefix(w.GetName(), a.opts.HubHash+"-") {
			if err := a.dyn.Resource(appliedWorks).Delete(ctx, w.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// AppliedWork returns a bundle's AppliedManifestWork, nil when absent.
func (a *Applier) AppliedWork(ctx context.Context, bundleID string) (*workv1.AppliedManifestWork, error) {
	u, err := a.dyn.Resource(appliedWorks).Get(ctx, AppliedWorkName(a.opts.HubHash, bundleID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var w workv1.AppliedManifestWork
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &w); err != nil {
		return nil, err
	}
	return &w, nil
}
