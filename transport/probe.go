package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// DefaultProbeCount is how many WebSocket pings a probe sends when
// [ProbeOptions].Count is zero.
const DefaultProbeCount = 5

// ProbeOptions configures [Probe].
type ProbeOptions struct {
	// Count is how many pings to send, one after the other; the result is
	// their median round trip. Default [DefaultProbeCount].
	Count int
	// TLSConfig is used for wss:// substrates (custom CAs).
	TLSConfig *tls.Config
	// HTTPHeader is sent with the WebSocket dial.
	HTTPHeader http.Header
}

// ErrProbe wraps every failure of [Probe].
var ErrProbe = errors.New("transport: probe failed")

// Probe measures the round trip to a substrate the way the node measures
// its primary: it opens a WebSocket to s, sends Count WebSocket pings in a
// row and returns the median round trip, then closes the connection
// normally. It never sends hello, so the substrate never registers the
// probe as a child: probing the substrate the node is attached to (or
// migrating to) does not disturb that link. Substrates answer WebSocket
// pings at the library level before any hello, as REPRAM's do.
//
// Only the pings are timed, not the TCP, TLS or WebSocket handshakes. ctx
// bounds the whole probe.
func Probe(ctx context.Context, s Substrate, opt ProbeOptions) (time.Duration, error) {
	if opt.Count < 0 {
		return 0, fmt.Errorf("%w: Count %d is negative", ErrProbe, opt.Count)
	}
	if opt.Count == 0 {
		opt.Count = DefaultProbeCount
	}
	dialOpt := dialOptions(&Config{TLSConfig: opt.TLSConfig, HTTPHeader: opt.HTTPHeader}, nil)
	conn, resp, err := websocket.Dial(ctx, s.URL, dialOpt)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("%w: dial %s: %w", ErrProbe, s.URL, err)
	}
	// Pongs are read by CloseRead's reader; a substrate sends no data
	// message before hello, and one that does ends the probe.
	conn.CloseRead(ctx)
	rtts := make([]time.Duration, 0, opt.Count)
	for range opt.Count {
		start := time.Now()
		if err := conn.Ping(ctx); err != nil {
			conn.CloseNow()
			return 0, fmt.Errorf("%w: ping %s: %w", ErrProbe, s.URL, err)
		}
		rtts = append(rtts, time.Since(start))
	}
	if err := conn.Close(websocket.StatusNormalClosure, "handover: probe done"); err != nil {
		conn.CloseNow()
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}

// measure probes, concurrently, every candidate of obs whose Latency is 0,
// except the current primary's substrate (its latency is the heartbeat's).
// A candidate that cannot be probed stays unmeasured. It runs on the
// caller's goroutine, never on the event loop, and returns when every probe
// has ended.
func (n *Node) measure(ctx context.Context, obs Observation) Observation {
	primary := n.Status().Primary
	opt := ProbeOptions{TLSConfig: n.cfg.TLSConfig, HTTPHeader: n.cfg.HTTPHeader}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Tuning.HandshakeTimeout)
	defer cancel()
	cands := slices.Clone(obs.Candidates)
	var wg sync.WaitGroup
	for i, c := range cands {
		if c.Latency != 0 || c.URL == "" || (primary.ID != "" && c.ID == primary.ID) || c.URL == primary.URL {
			continue
		}
		wg.Go(func() {
			rtt, err := Probe(ctx, c.Substrate, opt)
			if err != nil {
				n.log.Debug().Err(err).Str("substrate", c.ID).Msg("candidate left unmeasured")
				return
			}
			cands[i].Latency = max(rtt, 1) // 0 would read as unmeasured
		})
	}
	wg.Wait()
	obs.Candidates = cands
	return obs
}
