// Package bus holds the conventions every mcpgw service follows on NATS
// JetStream: stream, bucket and subject names; the registry of who owns which
// CONTROL aggregate, audit kind and RPC verb (and who may call each verb); the
// NATS permissions derived from that registry; signed events with optimistic
// concurrency; authenticated request/reply; and verified replay of CONTROL.
//
// Every message proves its sender: events are signed with the owning
// service's Ed25519 key over subject, message ID, signer and payload digest;
// RPC requests are signed by the caller over subject, time, nonce and payload
// digest, and replies by the server over the request's nonce. Receivers check
// the signature and the registry, so a message relayed onto a subject its
// author may not publish to is still refused.
package bus
