// Package transport attaches a transient node of a REPRAM gossip overlay to
// a substrate over a WebSocket and migrates it, make-before-break, when a
// better substrate appears or the current one leaves, goes silent or dies.
// A node runtime embeds one [Node] per transient node. Substrates never
// migrate and never run this code.
//
// # Embed and attach
//
// [New] takes a [Config]. The common case needs three fields: the
// [Identity] the node introduces itself with in hello, the cluster
// [Secret] (every frame signed and verified) and a Handler for gossip:
//
//	node, err := transport.New(transport.Config{
//		Identity: transport.Identity{NodeID: "t1", Enclave: "eu", Address: "10.0.0.7"},
//		Secret:   clusterSecret,
//		Handler:  func(g transport.Gossip) { store(g.Message) },
//	})
//	defer node.Close(ctx)
//	err = node.Attach(ctx, transport.Substrate{ID: "sub-a", URL: "ws://sub-a:8080/v1/ws", Enclave: "eu"})
//
// [Node.Attach] starts the first attachment and returns; from then on the
// node migrates by itself, and reattaches (racing the substrates it knows)
// if it loses its link. The Handler receives every gossip message once,
// deduplicated by message id, one call at a time, on a goroutine of its
// own. [Node.Send] writes through whatever the primary is at the moment.
//
// The rest of Config is grouped by concern, and every zero value is a
// default that suits real networks: Policy or Decider (when to migrate),
// Tuning (the engine's durations and bounds: handshake timeout, race,
// overlap, heartbeats, backoffs, dedup window), ReadLimit and
// DeliveryBuffer (sizes), Logger or SlogLogger (logs), TLSConfig and
// HTTPHeader (dialling).
//
// # Feed observations, or let the node probe
//
// Call [Node.Observe] once per evaluation cycle with an [Observation]: the
// primary's latency (0: the round trip of the node's own heartbeats) and
// the candidates measured in the cycle. The policy (package policy) answers
// with its decision: a candidate must be in this node's enclave while the
// primary is not, or more than 25 % faster, in two cycles in a row, outside
// the cooldown that follows every change of attachment. With
// Observation.Measure set, the node measures each candidate reported
// without a latency itself, with [Probe] (WebSocket pings without hello, so
// a probe never registers as a child), concurrently and off the event loop.
//
// # Migration
//
// When the policy says candidate_better, or the primary says goodbye, the
// node dials the new substrate and sends hello while the old link keeps
// delivering. After the welcome both links deliver and duplicates are
// dropped. The old link is closed only when the new one has caught up:
// it answered a ping, and every message the old link delivered past the
// exempt tail (what was published before the new substrate knew this node)
// and older than a margin derived from the measured propagation skew has
// also come on the new link. A new link that never catches up is dropped
// at Tuning.OverlapMax and the old one kept; if the old link dies
// mid-overlap the new one becomes primary at once.
//
// When the node must move (goodbye, a primary silent past its suspicion
// timeout, a dead primary, a rejoin) it races the alternatives Happy
// Eyeballs style: the best first, the next after each Tuning.AttemptDelay
// without a welcome; the first welcome wins. Substrates that failed are
// backed off.
//
// # Guarantee and its assumption
//
// Every gossip message that reaches a substrate the node is attached to,
// or is migrating to after its welcome, while that link is up, is handed to
// the Handler exactly once, provided the propagation skew between two
// substrates stays below Tuning.OverlapGrace. The dedup window is bounded
// in time and size.
//
// # Watch it
//
// [Node.Subscribe] returns every [Transition] (state chart step, path,
// primary, candidates, reason); [Node.Status] is a snapshot of the state,
// links, round trip and [Stats]. Package transport/metrics exports both to
// Prometheus without this package importing it. Logs go to Config.Logger
// (zerolog) or Config.SlogLogger (log/slog); the secret is redacted in every
// printed, marshalled or logged form.
//
// # Shut down
//
// [Node.Close] closes every link with the WebSocket close handshake and
// waits, bounded by its context, for every goroutine the node started and
// for the Handler to finish what was already delivered. Subscriber channels
// are closed after the close transition; a closed node returns [ErrClosed].
//
// # Back-pressure
//
// At most Config.DeliveryBuffer messages wait for the Handler; past that
// the links stop reading, so the substrates (not this process) hold the
// backlog, and the event loop keeps handling control events. A Handler
// that never returns eventually costs the links their heartbeats. Each
// link hands its reports to the loop through a mailbox of at most 256, in
// batches: one wakeup of the loop per batch (signalled before the reader
// goes back to its socket), not per frame.
//
// # Inside
//
// A Node is a thin shell over the sans-I/O engine of package
// transport/engine: one event-loop goroutine feeds it what the links, the
// timer and the API report, and carries out the effects it returns (dial,
// hello, ping, close, deliver, publish a transition). The types [Substrate],
// [Candidate], [Gossip], [Transition], [Stats] and [Decider] are the
// engine's. Package wire is the protocol codec; package substratetest runs
// substrates in-process (with faults) for tests, simulations and the
// examples below. The design, the state chart's rules, the caught-up rule,
// recovery and the wire protocol are described in docs/design.md of this
// repository, the receive path and its costs in docs/receive-path.md.
package transport
