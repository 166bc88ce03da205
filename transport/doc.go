// Package transport attaches a transient node to REPRAM substrates over
// WebSockets and migrates it, make-before-break, when the policy finds a
// better substrate or the current one says goodbye.
//
// A [Node] is what a node runtime embeds. Its one event loop goroutine owns
// the state machine of package fsm, the policy, the links and the dedup
// window. Link goroutines, timers and API calls only post events to it; it
// fires them into the machine and carries out the actions the machine
// returns (dial, send hello, start overlap, promote, drop, close). Events
// from a link that is no longer the primary or the candidate are dropped and
// counted, never fired.
//
// # Migration
//
// When the policy emits candidate_better (or the primary says goodbye), the
// node dials the candidate and sends hello while the old link keeps
// delivering. After the welcome both links deliver; duplicates are dropped
// by message id. The old link is closed only when the new one has caught up:
// every message the old link delivered from OverlapGrace after the welcome
// until OverlapMin has also arrived on the new link, and the new link has
// answered a WebSocket ping. A new link that never catches up (a substrate
// that welcomes but does not forward) is dropped at OverlapMax and the old
// link kept. If the old link dies mid-overlap the new one becomes primary at
// once.
//
// # Guarantees and their assumption
//
// Every gossip message that reaches a substrate the node is attached to, or
// is migrating to after its welcome, while that link is up, is delivered to
// the handler exactly once, provided the mesh's propagation skew between two
// substrates is below OverlapGrace. The dedup window is bounded in memory
// (package dedup).
//
// # Measuring latency
//
// The primary's latency is the round trip of the driver's WebSocket
// heartbeats (used when Observation.CurrentLatency is 0). Candidates are
// measured with [Probe], which pings a substrate over a WebSocket without
// sending hello, so it never registers as a second child; set
// Observation.Measure to have [Node.Observe] probe every candidate whose
// Latency is 0, off the event loop.
//
// # Back-pressure
//
// The handler runs on its own goroutine. At most DeliveryBuffer messages
// wait for it; past that the links stop reading, so the substrates (not this
// process) hold the backlog, and the event loop keeps handling control
// events. A handler that never returns eventually costs the links their
// heartbeats.
//
// # Wire protocol
//
// Package wire holds the codec; substratetest is an in-process substrate
// mesh speaking the same protocol for tests and simulations.
package transport
