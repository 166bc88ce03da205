// Package substratetest runs REPRAM substrates in-process for tests, the way
// net/http/httptest runs HTTP servers: each [Server] listens on
// 127.0.0.1 on a free port and serves the real attachment wire protocol
// (package wire) over WebSocket at ws://127.0.0.1:PORT/v1/ws, and a [Mesh]
// stands in for the gossip overlay between them.
//
// It emulates REPRAM TS v2.1 as seen from a transient node:
//
//   - A hello (signed with the mesh's secret, if any) is answered with a
//     signed welcome whose topology lists the mesh's live substrates as SYNC
//     messages and whose your_position is {depth 1, parent_id: the
//     substrate}. Unsigned, badly signed or malformed frames are dropped
//     with no reply, so a wrong secret looks like a handshake timeout.
//   - A message published in the mesh ([Mesh.Publish]) reaches every live
//     substrate after its [Config].Delay, in publication order, and each
//     forwards it as a put, keeping from and message_id, to every welcomed
//     child whose hello named exactly its enclave. A PUT made on one
//     substrate ([Mesh.PublishVia], or a put frame a child sends, which is
//     also acked) reaches the other substrates' children but not its own.
//     REPRAM's write API is served too: PUT /v1/data/KEY ([DataPath]), with
//     the value as the body and an X-TTL header (seconds), is such a write.
//   - A second hello from the same node id on another connection replaces
//     the first registration, and closing either connection unregisters the
//     id (see [Server.Children]).
//   - Heartbeats are WebSocket pings ([Config].Heartbeat, off by default);
//     [HeartbeatMisses] unanswered pings in a row drop the connection. A
//     frame that is the JSON literal null kills the substrate, as it crashes
//     REPRAM TS.
//
// Each child has an ordered outgoing queue of [MeshConfig].QueueSize frames
// drained by its own writer, so a slow child never blocks the mesh or the
// other children: when its queue is full, or one write takes longer than
// [MeshConfig].WriteTimeout, the substrate drops the child's connection
// (without a close frame), as a real server gives up on a peer after write
// timeouts. Writes to a child that stops reading block once the kernel's
// socket buffers are full: a few MiB on loopback, or about
// [Config].SendBuffer bytes when it is set.
//
// Faults ([Faults]: refuse, mute hello, delay welcomes, withhold gossip,
// welcome naming another parent, corrupt frames, stop reading, hang) are
// set at any time, one way: [Server.SetFaults] replaces them all,
// [Server.UpdateFaults] changes some, [Server.ClearFaults] heals.
// [Server.Kill] dies abruptly, [Server.Shutdown] leaves gracefully with
// goodbyes, and [Server.Send], [Server.SendRaw] and
// [Server.SetOnHello] serve hostile-peer tests. [Mesh.Published] and
// [Mesh.Forwarded] count what went in and what went out.
//
// [Config].TLS serves wss:// with a test certificate. A [Proxy] in front of
// a substrate adds one-way delay, jitter and loss in both directions in
// user space, for tests that need latency a node can measure: loopback
// has none and kernel netem needs privileges.
//
// Every goroutine ends when its substrate stops; [Mesh.Close] stops them all
// and leaves none behind.
package substratetest
