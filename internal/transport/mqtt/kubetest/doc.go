// Package kubetest runs the real agent against a real kube-apiserver
// through the MQTT transport and a real broker, with the server's hub on
// SQLite: the end-to-end proof that the transport carries the protocol.
// It holds tests only.
package kubetest
