package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/client-go/util/jsonpath"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/evaluate"
	"github.com/baton-dev/baton/internal/fieldpath"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/pkg/api"
)

// Bundle checks a resource bundle as submitted (POST, PUT or the result of
// a PATCH): names, metadata, every manifest, manifest configs, delete
// option and the encoded size. With a transport t it also checks that the
// spec message fits what t carries (limits.MessageBytes); "" skips that
// check (a client that does not know the server's transport). Server-set
// fields are not looked at.
func Bundle(b *api.ResourceBundle, t limits.Transport) error {
	var es Errors
	es.name("consumer_name", b.ConsumerName, true)
	es.name("name", b.Name, true)
	es.name("source", b.Source, false)
	es.meta(&b.Metadata)
	es.manifests(b.Manifests)
	for i := range b.ManifestConfigs {
		es.manifestConfig(fmt.Sprintf("manifest_configs[%d]", i), &b.ManifestConfigs[i])
	}
	es.deleteOption(b.DeleteOption)
	es.executor(b.Executor)
	if len(es) == 0 {
		es.size(b, t)
	}
	return es.Err()
}

func (es *Errors) meta(m *api.ObjectMeta) {
	es.name("metadata.name", m.Name, false)
	if m.Namespace != "" {
		if msgs := content.IsDNS1123Label(m.Namespace); len(msgs) > 0 {
			es.add("metadata.namespace", "%q is not a valid namespace: %s", m.Namespace, strings.Join(msgs, "; "))
		}
	}
	es.labels("metadata.labels", m.Labels)
	var n int
	for k, v := range m.Annotations {
		n += len(k) + len(v)
	}
	if n > limits.AnnotationsBytes {
		es.add("metadata.annotations", "total size %d bytes is over the limit of %s", n, limits.Human(limits.AnnotationsBytes))
	}
}

// size checks the encoded spec against limits.BundleSpecBytes and, with a
// transport, the spec message against what the transport carries.
func (es *Errors) size(b *api.ResourceBundle, t limits.Transport) {
	spec := b.Spec()
	raw, err := json.Marshal(&spec)
	if err != nil {
		es.add("manifests", "cannot be encoded: %v", err)
		return
	}
	if len(raw) > limits.BundleSpecBytes {
		es.add("manifests", "bundle is %d bytes encoded; the limit is %s", len(raw), limits.Human(limits.BundleSpecBytes))
		return
	}
	if t == "" {
		return
	}
	if n, max := SpecMessageBytes(raw, b.Metadata), limits.MessageBytes(t); n > max {
		es.add("manifests", "the bundle's message to its agent would be %d bytes (spec %d, metadata with labels and annotations %d); "+
			"the %s transport carries at most %s", n, len(raw), n-len(raw)-limits.SpecEnvelopeBytes, t, limits.Human(max))
	}
}

// SpecMessageBytes bounds the encoded size of the spec message that
// carries a bundle to its agent, in the most verbose encoding a transport
// uses (a CloudEvent in JSON): the spec as data, the metadata as a JSON
// string in the `metadata` extension, and limits.SpecEnvelopeBytes for
// the rest.
func SpecMessageBytes(spec []byte, meta api.ObjectMeta) int {
	m, _ := json.Marshal(meta) // ObjectMeta holds only strings and maps
	quoted, _ := json.Marshal(string(m))
	return len(spec) + len(quoted) + limits.SpecEnvelopeBytes
}

// manifestHead is the part of a manifest validation reads.
type manifestHead struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   *struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
}

func (es *Errors) manifests(ms []json.RawMessage) {
	switch {
	case len(ms) == 0:
		es.add("manifests", "at least one manifest is required")
		return
	case len(ms) > MaxManifests:
		es.add("manifests", "has %d manifests; at most %d are allowed", len(ms), MaxManifests)
		return
	}
	seen := make(map[string]int, len(ms))
	for i, raw := range ms {
		f := fmt.Sprintf("manifests[%d]", i)
		key, ok := es.manifest(f, raw)
		if !ok {
			continue
		}
		if j, dup := seen[key]; dup {
			es.add(f, "same object as manifests[%d] (%s)", j, key)
			continue
		}
		seen[key] = i
	}
}

// manifest checks one manifest and returns its identity.
func (es *Errors) manifest(f string, raw json.RawMessage) (string, bool) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		es.add(f, "must be a JSON object (a whole Kubernetes object)")
		return "", false
	}
	var h manifestHead
	if err := json.Unmarshal(trimmed, &h); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			es.add(f+"."+te.Field, "must be a %s, not a JSON %s", te.Type, te.Value)
		} else {
			es.add(f, "is not valid JSON: %v", err)
		}
		return "", false
	}
	n := len(*es)
	if h.APIVersion == "" {
		es.add(f+".apiVersion", "is required")
	}
	if h.Kind == "" {
		es.add(f+".kind", "is required")
	}
	switch {
	case h.Metadata == nil:
		es.add(f+".metadata", "is required (with metadata.name)")
	case h.Metadata.GenerateName != "":
		es.add(f+".metadata.generateName", "is not supported; set metadata.name")
	case h.Metadata.Name == "":
		es.add(f+".metadata.name", "is required")
	}
	if len(*es) > n {
		return "", false
	}
	return fmt.Sprintf("%s %s %s/%s", h.APIVersion, h.Kind, h.Metadata.Namespace, h.Metadata.Name), true
}

var updateTypes = map[workv1.UpdateStrategyType]bool{
	"": true, workv1.UpdateStrategyTypeUpdate: true, workv1.UpdateStrategyTypeCreateOnly: true,
	workv1.UpdateStrategyTypeServerSideApply: true, workv1.UpdateStrategyTypeReadOnly: true,
}

func (es *Errors) manifestConfig(f string, c *workv1.ManifestConfigOption) {
	id := c.ResourceIdentifier
	if id.Resource == "" {
		es.add(f+".resourceIdentifier.resource", "is required (e.g. \"services\")")
	}
	if id.Name == "" {
		es.add(f+".resourceIdentifier.name", "is required (\"*\" matches every name)")
	}
	if u := c.UpdateStrategy; u != nil {
		if !updateTypes[u.Type] {
			es.add(f+".updateStrategy.type", "unknown update strategy %q (want Update, CreateOnly, ServerSideApply or ReadOnly)", u.Type)
		}
		if u.ServerSideApply != nil {
			if u.Type != workv1.UpdateStrategyTypeServerSideApply {
				es.add(f+".updateStrategy.serverSideApply", "is only allowed with type ServerSideApply, not %q", u.Type)
			} else {
				es.serverSideApply(f+".updateStrategy.serverSideApply", u.ServerSideApply)
			}
		}
	}
	for j := range c.FeedbackRules {
		es.feedbackRule(fmt.Sprintf("%s.feedbackRules[%d]", f, j), &c.FeedbackRules[j])
	}
	conds := map[string]bool{}
	for j := range c.ConditionRules {
		es.conditionRule(fmt.Sprintf("%s.conditionRules[%d]", f, j), &c.ConditionRules[j], conds)
	}
	switch c.FeedbackScrapeType {
	case "", workv1.FeedbackPollType, workv1.FeedbackWatchType:
	default:
		es.add(f+".feedbackScrapeType", "unknown scrape type %q (want Poll or Watch)", c.FeedbackScrapeType)
	}
}

// reservedConditions are set by the agent itself; a rule may not set them.
var reservedConditions = map[string]bool{api.ConditionApplied: true, api.ConditionAvailable: true,
	api.ConditionStatusFeedbackSynced: true, api.ConditionDeleted: true}

func (es *Errors) conditionRule(f string, r *workv1.ConditionRule, seen map[string]bool) {
	cond := r.Condition
	switch r.Type {
	case workv1.WellKnownConditionsType:
		if cond == "" {
			cond = evaluate.DefaultRuleCondition
		}
		if len(r.CelExpressions) > 0 {
			es.add(f+".celExpressions", "is only allowed with type CEL")
		}
	case workv1.CelConditionExpressionsType:
		if cond == "" {
			es.add(f+".condition", "is required for CEL rules")
		}
		if len(r.CelExpressions) == 0 {
			es.add(f+".celExpressions", "at least one expression is required for CEL rules")
		}
		for k, e := range r.CelExpressions {
			if err := evaluate.CheckCEL(e, false); err != nil {
				es.add(fmt.Sprintf("%s.celExpressions[%d]", f, k), "%v", err)
			}
		}
	default:
		es.add(f+".type", "unknown condition rule type %q (want WellKnownConditions or CEL)", r.Type)
	}
	if r.MessageExpression != "" {
		if err := evaluate.CheckCEL(r.MessageExpression, true); err != nil {
			es.add(f+".messageExpression", "%v", err)
		}
	}
	if cond == "" {
		return
	}
	switch {
	case reservedConditions[cond]:
		es.add(f+".condition", "%q is set by the agent itself; choose another condition type (e.g. Ready or Complete)", cond)
	case len(content.IsQualifiedName(cond)) > 0:
		es.add(f+".condition", "%q is not a valid condition type: %s", cond, strings.Join(content.IsQualifiedName(cond), "; "))
	case seen[cond]:
		es.add(f+".condition", "%q is set by another rule of this manifest config", cond)
	}
	seen[cond] = true
}

func (es *Errors) serverSideApply(f string, s *workv1.ServerSideApplyConfig) {
	// Any field manager is accepted, as Maestro accepts it (OCM's work
	// agent prefixes nothing either when it applies a bundle's choice).
	// The API server's own limit is 128 characters.
	if len(s.FieldManager) > 128 {
		es.add(f+".fieldManager", "%q is longer than 128 characters", s.FieldManager)
	}
	for k, ig := range s.IgnoreFields {
		igf := fmt.Sprintf("%s.ignoreFields[%d]", f, k)
		switch ig.Condition {
		case "", workv1.IgnoreFieldsConditionOnSpokePresent, workv1.IgnoreFieldsConditionOnSpokeChange:
		default:
			es.add(igf+".condition", "unknown condition %q (want OnSpokePresent or OnSpokeChange)", ig.Condition)
		}
		if len(ig.JSONPaths)+len(ig.JSONPointers)+len(ig.JQPathExpressions) == 0 {
			es.add(igf, "names no field (set jsonPaths, jsonPointers or jqPathExpressions)")
		}
		for m, p := range ig.JSONPaths {
			if err := fieldpath.Check(workv1.IgnoreField{JSONPaths: []string{p}}); err != nil {
				es.add(fmt.Sprintf("%s.jsonPaths[%d]", igf, m), "%v", err)
			}
		}
		for m, p := range ig.JSONPointers {
			if err := fieldpath.Check(workv1.IgnoreField{JSONPointers: []string{p}}); err != nil {
				es.add(fmt.Sprintf("%s.jsonPointers[%d]", igf, m), "%v", err)
			}
		}
		for m, p := range ig.JQPathExpressions {
			if err := fieldpath.Check(workv1.IgnoreField{JQPathExpressions: []string{p}}); err != nil {
				es.add(fmt.Sprintf("%s.jqPathExpressions[%d]", igf, m), "%v", err)
			}
		}
	}
}

func (es *Errors) feedbackRule(f string, r *workv1.FeedbackRule) {
	switch r.Type {
	case workv1.WellKnownStatusType:
		if len(r.JsonPaths) > 0 {
			es.add(f+".jsonPaths", "is only allowed with type JSONPaths")
		}
	case workv1.JSONPathsType:
		if len(r.JsonPaths) == 0 {
			es.add(f+".jsonPaths", "at least one path is required with type JSONPaths")
		}
		names := map[string]bool{}
		for k, p := range r.JsonPaths {
			pf := fmt.Sprintf("%s.jsonPaths[%d]", f, k)
			if p.Name == "" {
				es.add(pf+".name", "is required")
			} else if names[p.Name] {
				es.add(pf+".name", "%q is used twice in this rule", p.Name)
			}
			names[p.Name] = true
			if err := JSONPath(p.Path); err != nil {
				es.add(pf+".path", "%v", err)
			}
			if p.Version != "" && !apiVersion.MatchString(p.Version) {
				es.add(pf+".version", "%q is not an API version (e.g. v1, v1beta1)", p.Version)
			}
		}
	default:
		es.add(f+".type", "unknown feedback rule type %q (want WellKnownStatus or JSONPaths)", r.Type)
	}
}

// apiVersion is the form of a Kubernetes API version within a group.
var apiVersion = regexp.MustCompile(`^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$`)

// JSONPath checks a Kubernetes JSONPath expression as feedback rules use it
// (".status.loadBalancer.ingress[0].ip", without the braces).
func JSONPath(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("is required")
	}
	if err := jsonpath.New("feedback").Parse("{" + p + "}"); err != nil {
		return fmt.Errorf("invalid JSONPath %q: %v", p, err)
	}
	return nil
}

var propagationPolicies = map[workv1.DeletePropagationPolicyType]bool{
	"": true, workv1.DeletePropagationPolicyTypeForeground: true,
	workv1.DeletePropagationPolicyTypeOrphan: true, workv1.DeletePropagationPolicyTypeSelectivelyOrphan: true,
}

func (es *Errors) deleteOption(d *workv1.DeleteOption) {
	if d == nil {
		return
	}
	const f = "delete_option"
	if !propagationPolicies[d.PropagationPolicy] {
		es.add(f+".propagationPolicy", "unknown propagation policy %q (want Foreground, Orphan or SelectivelyOrphan)", d.PropagationPolicy)
	}
	if d.SelectivelyOrphan != nil {
		if d.PropagationPolicy != workv1.DeletePropagationPolicyTypeSelectivelyOrphan {
			es.add(f+".selectivelyOrphans", "is only allowed with propagationPolicy SelectivelyOrphan")
		}
		for i, r := range d.SelectivelyOrphan.OrphaningRules {
			rf := fmt.Sprintf("%s.selectivelyOrphans.orphaningRules[%d]", f, i)
			if r.Resource == "" {
				es.add(rf+".resource", "is required")
			}
			if r.Name == "" {
				es.add(rf+".name", "is required")
			}
		}
	}
	if d.TTLSecondsAfterFinished != nil && *d.TTLSecondsAfterFinished < 0 {
		es.add(f+".ttlSecondsAfterFinished", "must not be negative")
	}
}

func (es *Errors) executor(e *workv1.ManifestWorkExecutor) {
	if e == nil {
		return
	}
	const f = "executor.subject"
	if e.Subject.Type != workv1.ExecutorSubjectTypeServiceAccount {
		es.add(f+".type", "unknown subject type %q (want ServiceAccount)", e.Subject.Type)
	}
	sa := e.Subject.ServiceAccount
	if sa == nil {
		es.add(f+".serviceAccount", "is required (namespace and name of a service account of the managed cluster)")
		return
	}
	for field, v := range map[string]string{"namespace": sa.Namespace, "name": sa.Name} {
		if msgs := content.IsDNS1123Subdomain(v); len(msgs) > 0 {
			es.add(f+".serviceAccount."+field, "%q is not a valid service account %s: %s", v, field, strings.Join(msgs, "; "))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
