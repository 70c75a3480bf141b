package evaluate

import (
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

// BenchmarkObjectAndHash measures one re-evaluation of the seed Service
// (JSONPath feedback) plus the bundle conditions and status hash: the work
// the agent does per watch event.
func BenchmarkObjectAndHash(b *testing.B) {
	svc, r := obj(b, serviceYAML), rules(b, ipRule)
	in := Input{Meta: serviceMeta, Object: svc, FeedbackRules: r, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: t0}
	prev := Object(in)
	in.Previous = &prev
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in.ObservedAt = t0.Add(time.Duration(i) * time.Second)
		st := Object(in)
		_ = protocol.HashStatus(api.ReportedStatus{Conditions: Bundle([]api.ResourceStatus{st}, 1, nil), ResourceStatus: []api.ResourceStatus{st}})
	}
}

// BenchmarkWellKnownDeployment measures WellKnownStatus feedback on a Deployment.
func BenchmarkWellKnownDeployment(b *testing.B) {
	d := obj(b, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: w, uid: u},
		spec: {replicas: 3}, status: {replicas: 3, readyReplicas: 3, availableReplicas: 3, updatedReplicas: 3, observedGeneration: 1}}`)
	r := rules(b, `[{type: WellKnownStatus}]`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Feedback(d, r, nil)
	}
}

// BenchmarkConditionRules measures a CEL rule with a message expression
// and a well-known Ready rule on a Deployment: the extra work per watch
// event of a manifest with condition rules (programs are compiled once).
func BenchmarkConditionRules(b *testing.B) {
	d := obj(b, `{apiVersion: apps/v1, kind: Deployment, metadata: {name: w, uid: u},
		spec: {replicas: 3}, status: {replicas: 3, readyReplicas: 3, updatedReplicas: 3, conditions: [{type: Available, status: "True"}]}}`)
	r := condRules(b, `[{type: WellKnownConditions, condition: Ready},
		{type: CEL, condition: RolledOut, celExpressions: ["object.status.updatedReplicas == object.spec.replicas",
		  "object.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')"],
		 messageExpression: 'result ? "rolled out" : "rolling out"'}]`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Rules(d, r)
	}
}
