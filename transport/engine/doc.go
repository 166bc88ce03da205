// Package engine is the sans-I/O migration engine of a transient node: every
// decision of make-before-break migration, with no goroutine, no clock read
// and no network.
//
// # How an input becomes an effect
//
// The shell (package transport, or the virtual-time network of
// transport/simnet) calls [Engine.Step] with each input and the time it
// happened: an embedder command ([Attach], [Observe], [Close]), a link's
// report ([Welcomed], [GoodbyeReceived], [GossipReceived], [FrameRejected],
// [PingDone], [LinkClosed]) or [Tick]. The engine
//
//  1. applies its rules to the input (see [Rules]): a report from a dropped
//     link is stale and dropped; a candidate's goodbye is a refusal; the
//     primary's goodbye, suspicion or death queues the alternatives, best
//     first; gossip is checked for age, tracked for the overlap and
//     deduplicated;
//  2. fires the resulting event into the declared state machine of package
//     fsm, which runs on looplab/fsm; the chart's guards (has_alternative,
//     others_racing) are answered by the engine, and the machine returns
//     the transition's actions (or the declared reason it ignores the
//     event);
//  3. carries out the actions on its own state and turns them into
//     effects: [Dial], [SendHello], [CloseLink], [Deliver], [Transitioned];
//  4. acts on every deadline that has passed (a candidate's handshake,
//     the race's attempt delay, the overlap's catch-up check and maximum,
//     pings on silence and heartbeats, the rejoin backoff), which may fire
//     more events and emit [Ping] effects.
//
// Step returns the effects in the order they must be carried out, and
// [Engine.NextDeadline] says when to step the engine again if nothing else
// happens. The same inputs at the same times give the same effects: the
// engine's randomness (backoff jitter, ties among equally good
// alternatives) comes from Config.Seed.
//
// # Recovery
//
// When the node must move (the primary said goodbye, went silent, or died),
// the engine races the queued alternatives Happy Eyeballs style (RFC 8305):
// it dials the best, and every AttemptDelay without a welcome it dials the
// next as well, up to RaceWidth at once; the first welcome wins and the
// rivals are closed, while the old link, if still open, keeps delivering.
// A substrate that said goodbye, refused, timed out or died is backed off
// (doubling, capped, jittered) and ranked last. A primary that is silent
// for its suspicion timeout (SRTT + 4·RTTVAR of its pings, within
// [SuspectMin, SuspectMax]) is pinged; if that ping fails it is suspected
// and left make-before-break, and MissedHeartbeats failed pings declare it
// dead.
//
// # Overlap
//
// After the new link's welcome both links deliver; duplicates are dropped
// by message id (an ACK by message id and sender: each substrate that
// stored this node's write acknowledges it with the write's id). The old link is closed when the new one has caught up: it
// answered a ping, and every message the old link delivered past the
// exempt tail (what was published before the new substrate knew this node)
// and older than the margin has also come on the new link, except, once
// the new link has delivered a message the old one did, messages from
// origins it never delivers (REPRAM does not forward a substrate's own
// writes to its children; a partial mesh may never bring some publishers).
// Messages routed to this node (ACKs of its writes, anything with a "to")
// come only on the link their route takes: they are not tracked. The margin is
// twice a high percentile of the propagation skew measured on ids seen on
// both links, plus OverlapFloor, within [OverlapFloor, OverlapGrace]. A new
// link that never catches up is dropped at OverlapMax and the old kept.
package engine
