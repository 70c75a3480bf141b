// Package protocol defines the messages exchanged between the baton server
// and an agent, independent of the transport that carries them (gRPC
// CloudEvents, MQTT, or an in-process pipe in tests).
//
// The protocol is level-based (DESIGN.md I1, I5):
//   - The server sends Spec for every bundle generation until the agent
//     answers SpecAck for that generation (or a newer one).
//   - The agent sends Status for every status revision until the server
//     answers StatusAck; revisions are ordered per agent epoch.
//   - On (re)connect the agent sends Hello with what it holds; the server
//     answers with Spec for everything that differs, deletions included.
//   - The agent sends Heartbeat with a digest of every bundle's status; the
//     server answers StatusRequest for bundles whose hash differs from what
//     it stored, and the agent re-reports them.
//
// Both sides de-duplicate: a repeated Spec, Status or ack is harmless.
package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/baton-dev/baton/pkg/api"
)

// Type names a message.
type Type string

const (
	TypeSpec          Type = "spec"           // server → agent
	TypeSpecAck       Type = "spec_ack"       // agent → server
	TypeStatus        Type = "status"         // agent → server
	TypeStatusAck     Type = "status_ack"     // server → agent
	TypeHello         Type = "hello"          // agent → server, on every connect
	TypeHeartbeat     Type = "heartbeat"      // agent → server
	TypeStatusRequest Type = "status_request" // server → agent
	TypeSession       Type = "session"        // server → agent, answering every Hello
)

// Message is one protocol message; exactly the field named by Type is set.
type Message struct {
	Type          Type           `json:"type"`
	Consumer      string         `json:"consumer"`
	Spec          *Spec          `json:"spec,omitempty"`
	SpecAck       *SpecAck       `json:"specAck,omitempty"`
	Status        *Status        `json:"status,omitempty"`
	StatusAck     *StatusAck     `json:"statusAck,omitempty"`
	Hello         *Hello         `json:"hello,omitempty"`
	Heartbeat     *Heartbeat     `json:"heartbeat,omitempty"`
	StatusRequest *StatusRequest `json:"statusRequest,omitempty"`
	Session       *Session       `json:"session,omitempty"`
}

// Spec is a bundle generation the agent must converge to. Deleting means the
// bundle must be removed according to its delete option.
type Spec struct {
	BundleID   string         `json:"bundleID"`
	Source     string         `json:"source,omitempty"`
	Generation int64          `json:"generation"`
	Deleting   bool           `json:"deleting,omitempty"`
	Meta       api.ObjectMeta `json:"meta"`
	Body       api.BundleSpec `json:"body"`
	// Incarnation names the generation space of Generation: the server's
	// record id of the consumer (a reset database or a recreated consumer
	// restarts generations under a new one), or a value derived from it
	// for a bundle the agent holds at a newer generation than the server's
	// store (restored from a backup). Generations of different incarnations
	// are not comparable, so the agent takes a spec of another incarnation
	// whatever its generation.
	Incarnation string `json:"incarnation,omitempty"`
}

// SpecAck says the agent has durably taken generation of a bundle (it will
// converge to it, or report why it cannot). Gone says the agent holds no such
// bundle any more (removal finished).
type SpecAck struct {
	BundleID   string `json:"bundleID"`
	Generation int64  `json:"generation"`
	Gone       bool   `json:"gone,omitempty"`
}

// Status is one status revision of one bundle.
type Status struct {
	BundleID string `json:"bundleID"`
	// Generation is the spec generation the status was computed from.
	Generation int64  `json:"generation"`
	Epoch      string `json:"epoch"`
	// Revision is the agent's counter within Epoch, strictly increasing
	// across all bundles of the agent.
	Revision int64              `json:"revision"`
	Reported api.ReportedStatus `json:"reported"`
	// Hash is HashStatus(Reported).
	Hash string `json:"hash"`
	// Deleted: the bundle's removal completed; the server may purge it.
	Deleted bool      `json:"deleted,omitempty"`
	At      time.Time `json:"at"`
}

// StatusAck acknowledges Status messages of one epoch.
type StatusAck struct {
	Epoch    string `json:"epoch"`
	BundleID string `json:"bundleID"`
	Revision int64  `json:"revision"`
}

// Hello opens a session: the agent's epoch and the generation of every
// bundle it holds. Batch/Batches number the parts of a split Hello.
// Incarnations gives, per bundle id of Held, the Spec.Incarnation the
// generation was taken under (absent: unknown, e.g. taken before agents
// recorded it); the server re-sends a bundle held under another
// incarnation than its own.
//
// Agent is the agent's identity (its pod or host name, --agent-id): one
// agent session per consumer is active, and the server tells every other
// agent to stand down (Session). A reconnect of the same identity takes
// its session over; empty means the epoch is the identity.
type Hello struct {
	Agent        string            `json:"agent,omitempty"`
	Epoch        string            `json:"epoch"`
	Held         map[string]int64  `json:"held"`
	Incarnations map[string]string `json:"incarnations,omitempty"`
	Batch        int               `json:"batch"`
	Batches      int               `json:"batches"`
}

// Heartbeat proves the agent alive and carries a digest (bundle id → status
// hash) of every bundle it holds, possibly split in batches.
type Heartbeat struct {
	Epoch   string            `json:"epoch"`
	Digest  map[string]string `json:"digest"`
	Batch   int               `json:"batch"`
	Batches int               `json:"batches"`
	At      time.Time         `json:"at"`
}

// StatusRequest asks the agent to re-report bundles now (empty: all).
type StatusRequest struct {
	BundleIDs []string `json:"bundleIDs,omitempty"`
}

// Session answers a complete Hello: Active says whether this agent now
// serves the consumer. An agent that is not active stands down — it
// applies and reports nothing — and says Hello again after RetryAfter;
// Holder names the agent that serves the consumer instead.
//
// Agent names the agent the answer is for (Hello.AgentID): on a link that
// carries several agents (an MQTT topic) each ignores the others' answers.
type Session struct {
	Agent      string        `json:"agent,omitempty"`
	Active     bool          `json:"active"`
	Holder     string        `json:"holder,omitempty"`
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
}

// AgentID is the identity of the agent of a Hello.
func (h *Hello) AgentID() string {
	if h.Agent != "" {
		return h.Agent
	}
	return h.Epoch
}

// HashStatus is the SHA-256 hex digest of a reported status's JSON; agent
// and server compute it the same way.
func HashStatus(s api.ReportedStatus) string {
	b, err := json.Marshal(s)
	if err != nil {
		// ReportedStatus holds only JSON-safe values; this cannot happen.
		panic("protocol: marshal status: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
