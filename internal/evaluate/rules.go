package evaluate

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// Condition rule reasons, Open Cluster Management's (every reason set by a
// rule starts with "ConditionRule").
const (
	ReasonRuleEvaluated       = workv1.ConditionRuleEvaluated
	ReasonRuleInvalid         = workv1.ConditionRuleInvalid
	ReasonRuleExpressionError = workv1.ConditionRuleExpressionError
)

// DefaultRuleCondition is the condition a WellKnownConditions rule sets
// when it names none.
const DefaultRuleCondition = workv1.ManifestComplete

// celCostLimit bounds the work of one expression on one object, so a rule
// over a huge list cannot stall the agent.
const celCostLimit = 1_000_000

// wellKnownConditions are the WellKnownConditions rules per kind and
// condition. Complete for Jobs and Pods is Open Cluster Management's;
// Ready for workloads is baton's, the readiness its Available condition
// used to carry before Available took OCM's meaning (the object exists).
var wellKnownConditions = map[schema.GroupKind]map[string]workv1.ConditionRule{
	gkJob: {
		workv1.ManifestComplete: {CelExpressions: []string{statusHas + ` && hasConditions(object.status) && object.status.conditions.exists(c, (c.type == 'Complete' || c.type == 'Failed') && c.status == 'True')`},
			MessageExpression: `result ? "Job is finished" : "Job is not finished"`},
	},
	gkPod: {
		workv1.ManifestComplete: {CelExpressions: []string{podPhase + ` in ['Succeeded', 'Failed']`},
			MessageExpression: `"Pod is in phase " + ` + podPhase},
		"Ready": {CelExpressions: []string{podPhase + ` == 'Succeeded' || (` + statusHas + ` && hasConditions(object.status) && object.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True'))`},
			MessageExpression: `(result ? "The pod is ready" : "The pod is not ready") + " (phase " + ` + podPhase + ` + ")"`},
	},
	gkDeployment:  {"Ready": replicasReady},
	gkStatefulSet: {"Ready": replicasReady},
	gkDaemonSet: {
		"Ready": {CelExpressions: []string{statusInt("numberReady") + ` >= ` + statusInt("desiredNumberScheduled")},
			MessageExpression: `string(` + statusInt("numberReady") + `) + "/" + string(` + statusInt("desiredNumberScheduled") + `) + " scheduled pods ready"`},
	},
}

// CEL fragments of the well-known rules; objects may lack spec or status.
const (
	statusHas    = `has(object.status)`
	podPhase     = `(has(object.status) && has(object.status.phase) ? object.status.phase : 'Unknown')`
	specReplicas = `(has(object.spec) && has(object.spec.replicas) ? object.spec.replicas : 1)`
)

func statusInt(f string) string {
	return `(has(object.status) && has(object.status.` + f + `) ? object.status.` + f + ` : 0)`
}

// replicasReady: a Deployment or StatefulSet has as many ready replicas as
// it asks for (one when spec.replicas is unset).
var replicasReady = workv1.ConditionRule{
	CelExpressions:    []string{statusInt("readyReplicas") + ` >= ` + specReplicas},
	MessageExpression: `string(` + statusInt("readyReplicas") + `) + "/" + string(` + specReplicas + `) + " replicas ready"`,
}

// WellKnownConditions lists, per kind, the conditions WellKnownConditions
// rules can set.
func WellKnownConditions(gk schema.GroupKind) []string {
	var out []string
	for c := range wellKnownConditions[gk] {
		out = append(out, c)
	}
	return out
}

// ruleCondition is the condition type a rule sets.
func ruleCondition(r workv1.ConditionRule) string {
	if r.Condition == "" && r.Type == workv1.WellKnownConditionsType {
		return DefaultRuleCondition
	}
	return r.Condition
}

// Rules evaluates condition rules on an existing object and returns one
// condition (without time) per rule, in rule order; a later rule setting
// the same condition as an earlier one is skipped. A rule's condition is
// True when all its CEL expressions are true (evaluated in order, the
// first false one decides), with its message from messageExpression
// (variables object and result), else message, else "Manifest is [not]
// <condition>". An expression that does not compile or does not yield a
// bool makes the condition False with ConditionRuleExpressionError; a
// WellKnownConditions rule for a kind without one is Unknown with
// ConditionRuleInvalid.
func Rules(obj *unstructured.Unstructured, rules []workv1.ConditionRule) []metav1.Condition {
	return eachRule(rules, func(r workv1.ConditionRule, typ string) metav1.Condition { return evalRule(obj, r, typ) })
}

// missingRules is Rules for an object that does not exist: every rule's
// condition is Unknown with reason NotFound.
func missingRules(rules []workv1.ConditionRule) []metav1.Condition {
	return eachRule(rules, func(_ workv1.ConditionRule, typ string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionUnknown, Reason: api.ReasonNotFound,
			Message: "The object does not exist; the rule is not evaluated"}
	})
}

// eachRule maps the rules to conditions in order, skipping a rule whose
// condition an earlier rule sets.
func eachRule(rules []workv1.ConditionRule, fn func(workv1.ConditionRule, string) metav1.Condition) []metav1.Condition {
	var out []metav1.Condition
	seen := map[string]bool{}
	for _, r := range rules {
		typ := ruleCondition(r)
		if seen[typ] {
			continue
		}
		seen[typ] = true
		out = append(out, fn(r, typ))
	}
	return out
}

func evalRule(obj *unstructured.Unstructured, r workv1.ConditionRule, typ string) metav1.Condition {
	c := metav1.Condition{Type: typ}
	switch r.Type {
	case workv1.WellKnownConditionsType:
		gk := obj.GroupVersionKind().GroupKind()
		wk, ok := wellKnownConditions[gk][typ]
		if !ok {
			c.Status, c.Reason = metav1.ConditionUnknown, ReasonRuleInvalid
			c.Message = fmt.Sprintf("no well-known condition %s for kind %s", typ, gk)
			return c
		}
		if r.Message != "" {
			wk.Message, wk.MessageExpression = r.Message, ""
		}
		if r.MessageExpression != "" {
			wk.MessageExpression = r.MessageExpression
		}
		r = wk
	case workv1.CelConditionExpressionsType:
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonRuleInvalid, fmt.Sprintf("unknown condition rule type %q", r.Type)
		return c
	}
	result := true
	for _, expr := range r.CelExpressions {
		v, err := evalCEL(expr, obj.Object, nil)
		if err != nil {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonRuleExpressionError, err.Error()
			return c
		}
		b, ok := v.(bool)
		if !ok {
			c.Status, c.Reason = metav1.ConditionFalse, ReasonRuleExpressionError
			c.Message = fmt.Sprintf("expression %q yields %T, not a bool", expr, v)
			return c
		}
		if !b {
			result = false
			break
		}
	}
	c.Status, c.Reason = metav1.ConditionFalse, ReasonRuleEvaluated
	if result {
		c.Status = metav1.ConditionTrue
	}
	c.Message = ruleMessage(obj, r, typ, result)
	return c
}

// ruleMessage is the message of an evaluated rule.
func ruleMessage(obj *unstructured.Unstructured, r workv1.ConditionRule, typ string, result bool) string {
	if r.MessageExpression != "" {
		v, err := evalCEL(r.MessageExpression, obj.Object, &result)
		if s, ok := v.(string); err == nil && ok && s != "" {
			return s
		}
		if err != nil && r.Message == "" {
			return "messageExpression: " + err.Error()
		}
	}
	if r.Message != "" {
		return r.Message
	}
	if result {
		return "Manifest is " + typ
	}
	return "Manifest is not " + typ
}

// CheckCEL compiles a condition rule expression (message=false: it must
// yield a bool) or message expression (message=true: a string, with the
// variable result). Validation uses it to refuse bad rules up front.
func CheckCEL(expr string, message bool) error {
	p, err := program(expr, message)
	if err != nil {
		return err
	}
	want := cel.BoolType
	if message {
		want = cel.StringType
	}
	if t := p.out; t != nil && t.Kind() != types.DynKind && !want.IsAssignableType(t) {
		return fmt.Errorf("expression %q yields %s, not %s", expr, t, want)
	}
	return nil
}

// compiled is a CEL program and its declared output type.
type compiled struct {
	prg cel.Program
	out *cel.Type
}

var (
	envOnce           sync.Once
	ruleEnv, msgEnv   *cel.Env
	envErr            error
	programs          sync.Map // "r:"|"m:" + expression → *compiled; compiled once
	errNotCompiled    = errors.New("the CEL environment could not be built")
	hasConditionsFunc = cel.Function("hasConditions", cel.Overload("has_conditions_dyn",
		[]*cel.Type{cel.DynType}, cel.BoolType, cel.UnaryBinding(hasConditions)))
)

func envs() (*cel.Env, *cel.Env, error) {
	envOnce.Do(func() {
		base := []cel.EnvOption{cel.Variable("object", cel.DynType), ext.Strings(), ext.Lists(), hasConditionsFunc}
		ruleEnv, envErr = cel.NewEnv(base...)
		if envErr == nil {
			msgEnv, envErr = cel.NewEnv(append(base, cel.Variable("result", cel.BoolType))...)
		}
	})
	if envErr != nil {
		return nil, nil, fmt.Errorf("%w: %v", errNotCompiled, envErr)
	}
	return ruleEnv, msgEnv, nil
}

// program compiles expr once and caches it.
func program(expr string, message bool) (*compiled, error) {
	key := "r:" + expr
	if message {
		key = "m:" + expr
	}
	if p, ok := programs.Load(key); ok {
		return p.(*compiled), nil
	}
	re, me, err := envs()
	if err != nil {
		return nil, err
	}
	env := re
	if message {
		env = me
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		// The first line names the problem; the rest is a code excerpt.
		msg, _, _ := strings.Cut(iss.Err().Error(), "\n")
		return nil, fmt.Errorf("expression %q: %s", expr, msg)
	}
	prg, err := env.Program(ast, cel.CostLimit(celCostLimit))
	if err != nil {
		return nil, fmt.Errorf("expression %q: %v", expr, err)
	}
	c := &compiled{prg: prg, out: ast.OutputType()}
	programs.Store(key, c)
	return c, nil
}

// evalCEL evaluates expr on object (and result, for message expressions)
// and returns its Go value.
func evalCEL(expr string, object map[string]any, result *bool) (any, error) {
	p, err := program(expr, result != nil)
	if err != nil {
		return nil, err
	}
	vars := map[string]any{"object": object}
	if result != nil {
		vars["result"] = *result
	}
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %v", expr, err)
	}
	return out.Value(), nil
}

// hasConditions says whether a status has a non-empty conditions list.
func hasConditions(v ref.Val) ref.Val {
	m, ok := v.(traits.Mapper)
	if !ok {
		return types.False
	}
	conds, found := m.Find(types.String("conditions"))
	if !found {
		return types.False
	}
	l, ok := conds.(traits.Lister)
	return types.Bool(ok && l.Size() != types.IntZero)
}
