package mqtt

import (
	"fmt"
	"strings"
)

// Topic suffixes of REFERENCE.md's MQTT layout.
const (
	sourceEvents = "sourceevents"
	agentEvents  = "agentevents"
)

// SourceEventsTopic is the topic the server publishes consumer's messages on.
func SourceEventsTopic(source, consumer string) string {
	return "sources/" + source + "/consumers/" + consumer + "/" + sourceEvents
}

// AgentEventsTopic is the topic consumer's agent publishes on.
func AgentEventsTopic(source, consumer string) string {
	return "sources/" + source + "/consumers/" + consumer + "/" + agentEvents
}

// agentEventsFilter matches every consumer's agentevents topic of source.
func agentEventsFilter(source string) string { return AgentEventsTopic(source, "+") }

// consumerOf returns the consumer of an agentevents topic of source, or ""
// when topic is not one.
func consumerOf(source, topic string) string {
	rest, ok := strings.CutPrefix(topic, "sources/"+source+"/consumers/")
	if !ok {
		return ""
	}
	consumer, ok := strings.CutSuffix(rest, "/"+agentEvents)
	if !ok || !validName(consumer) {
		return ""
	}
	return consumer
}

// validName reports whether s can be one level of a topic: non-empty, no
// level separator, no wildcard.
func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/+#\x00")
}

func checkName(what, s string) error {
	if !validName(s) {
		return fmt.Errorf("%s %q: must be non-empty without '/', '+', '#'", what, s)
	}
	return nil
}
