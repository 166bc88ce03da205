package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/wire"
)

// link is one WebSocket to one substrate. Its goroutines (run and read) only
// report to the event loop; every decision about it is the loop's.
type link struct {
	id     uint64
	target Substrate

	// ctx ends when the link is stopped: it bounds the dial, the hello, the
	// heartbeat and the wait for a delivery credit. Reads run under root
	// (the node's), because cancelling a read makes the WebSocket library
	// drop the connection without the close handshake a clean stop needs.
	ctx    context.Context
	cancel context.CancelFunc
	root   context.Context

	closeOnce sync.Once
	closeCode atomic.Int32 // status for a clean close; 0 closes abruptly

	conn    atomic.Pointer[websocket.Conn] // set once dialed; used by Send
	starved atomic.Bool                    // the reader waits for a delivery credit

	// Owned by the event loop.
	welcomed    bool
	goodbyeSeen bool
	pingOK      bool
	rtt         time.Duration
	hsTimer     *time.Timer
}

// linkEventKind says what a link reports.
type linkEventKind int

const (
	evWelcome  linkEventKind = iota // a valid welcome
	evGoodbye                       // a goodbye (refusal or shutdown)
	evGossip                        // a gossip message; holds a delivery credit
	evBadFrame                      // a frame that failed to decode or verify
	evRTT                           // a heartbeat ping was answered
	evClosed                        // the link is gone; err says why
)

func (k linkEventKind) String() string {
	return [...]string{"welcome", "goodbye", "gossip", "bad_frame", "rtt", "closed"}[k]
}

type linkEvent struct {
	link    *link
	kind    linkEventKind
	typ     wire.Type
	welcome wire.Welcome
	goodbye wire.Goodbye
	msg     wire.Message
	rtt     time.Duration
	err     error
	at      time.Time // when the frame was read
}

// linkEnv is what a link needs from its node; kept narrow so links never
// touch the loop's state.
type linkEnv struct {
	cfg     *Config
	hello   []byte
	dialOpt *websocket.DialOptions
	post    func(linkEvent) bool // false once the node is closing
	credits chan struct{}        // delivery credits: send to take, receive to return
	wg      *sync.WaitGroup
}

func newLink(root context.Context, id uint64, target Substrate) *link {
	ctx, cancel := context.WithCancel(root)
	return &link{id: id, target: target, ctx: ctx, cancel: cancel, root: root}
}

// stop closes the link: cleanly with code, or abruptly when code is 0. It
// never blocks; the close handshake runs on the link's own goroutine.
func (l *link) stop(code websocket.StatusCode) {
	l.closeOnce.Do(func() {
		l.closeCode.Store(int32(code))
		l.cancel()
	})
}

// run dials, sends hello, starts the reader and the heartbeat, and closes
// the connection when the link is stopped or the reader ends.
func (l *link) run(env linkEnv) {
	defer env.wg.Done()
	conn, resp, err := websocket.Dial(l.ctx, l.target.URL, env.dialOpt)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		env.post(linkEvent{link: l, kind: evClosed, err: fmt.Errorf("dial %s: %w", l.target.URL, err)})
		return
	}
	// The library closes the link on frames past the hard limit; frames
	// between ReadLimit and it are drained and rejected by read.
	conn.SetReadLimit(8 * env.cfg.ReadLimit)
	l.conn.Store(conn)
	if err := conn.Write(l.ctx, websocket.MessageText, env.hello); err != nil {
		conn.CloseNow()
		env.post(linkEvent{link: l, kind: evClosed, err: fmt.Errorf("send hello to %s: %w", l.target.URL, err)})
		return
	}
	readerDone, heartbeatDone := make(chan struct{}), make(chan struct{})
	env.wg.Add(2)
	go l.read(env, conn, readerDone)
	go func() {
		defer env.wg.Done()
		defer close(heartbeatDone)
		l.heartbeat(env, conn, readerDone)
	}()
	select {
	case <-l.ctx.Done():
	case <-readerDone:
	}
	if code := websocket.StatusCode(l.closeCode.Load()); code != 0 {
		// The close handshake: the reader gets the peer's close frame and
		// ends, and what we sent before it is processed by the substrate.
		_ = conn.Close(code, "handover: link closed")
	} else {
		_ = conn.CloseNow()
	}
	<-readerDone
	<-heartbeatDone
}

// heartbeat pings at once (the first answer proves the link alive and gives
// a first RTT), then every interval; too many consecutive misses stop the link.
func (l *link) heartbeat(env linkEnv, conn *websocket.Conn, readerDone <-chan struct{}) {
	missed := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-readerDone:
			return
		case <-t.C:
		}
		if l.starved.Load() {
			// The reader is parked on back-pressure from a slow handler
			// and cannot read pongs: an unanswered ping proves nothing.
			missed = 0
			t.Reset(env.cfg.HeartbeatInterval)
			continue
		}
		// Under root, not l.ctx: a ping cut off by a stop would make the
		// library drop the connection before the close handshake. A stop
		// ends a ping in flight by closing the connection.
		ctx, cancel := context.WithTimeout(l.root, env.cfg.HeartbeatTimeout)
		start := time.Now()
		err := conn.Ping(ctx)
		cancel()
		switch {
		case err == nil:
			missed = 0
			env.post(linkEvent{link: l, kind: evRTT, rtt: time.Since(start)})
		case l.ctx.Err() != nil:
			return
		default:
			missed++
			if missed >= env.cfg.MissedHeartbeats {
				env.post(linkEvent{link: l, kind: evClosed,
					err: fmt.Errorf("link dead: %d heartbeats unanswered", missed)})
				l.stop(0)
				return
			}
		}
		t.Reset(env.cfg.HeartbeatInterval)
	}
}

// read decodes frames and reports them. It takes a delivery credit before
// reporting gossip, so a slow handler stops this reader (and, through TCP,
// the substrate) instead of growing a queue.
func (l *link) read(env linkEnv, conn *websocket.Conn, done chan<- struct{}) {
	defer env.wg.Done()
	defer close(done)
	var buf bytes.Buffer
	for {
		typ, r, err := conn.Reader(l.root)
		if err != nil {
			env.post(linkEvent{link: l, kind: evClosed, err: closeCause(err)})
			return
		}
		buf.Reset()
		n, err := io.Copy(&buf, io.LimitReader(r, env.cfg.ReadLimit+1))
		if err == nil && n > env.cfg.ReadLimit {
			_, err = io.Copy(io.Discard, r)
			if err == nil {
				env.post(linkEvent{link: l, kind: evBadFrame,
					err: fmt.Errorf("%w: over %d bytes", wire.ErrTooLarge, env.cfg.ReadLimit)})
				continue
			}
		}
		if err != nil {
			env.post(linkEvent{link: l, kind: evClosed, err: closeCause(err)})
			return
		}
		if typ != websocket.MessageText {
			env.post(linkEvent{link: l, kind: evBadFrame, err: fmt.Errorf("%w: binary frame", wire.ErrMalformed)})
			continue
		}
		ev := decodeEvent(l, buf.Bytes(), env.cfg.Secret)
		ev.at = time.Now()
		if ev.kind == evGossip && !l.takeCredit(env.credits) {
			return
		}
		if !env.post(ev) {
			return
		}
	}
}

// takeCredit waits for a delivery credit, marking the link starved while
// it waits; false when the link was stopped meanwhile.
func (l *link) takeCredit(credits chan<- struct{}) bool {
	select {
	case credits <- struct{}{}:
		return true
	default:
	}
	l.starved.Store(true)
	defer l.starved.Store(false)
	select {
	case credits <- struct{}{}:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// decodeEvent turns one frame into the event the loop should see.
func decodeEvent(l *link, frame, secret []byte) linkEvent {
	ev := linkEvent{link: l}
	bad := func(err error) linkEvent {
		ev.kind, ev.err = evBadFrame, err
		return ev
	}
	envl, err := wire.Decode(frame, secret)
	if err != nil {
		return bad(err)
	}
	ev.typ = envl.Type
	switch {
	case envl.Type == wire.TypeWelcome:
		ev.kind = evWelcome
		ev.welcome, err = envl.Welcome()
	case envl.Type == wire.TypeGoodbye:
		ev.kind = evGoodbye
		ev.goodbye, err = envl.Goodbye()
	case envl.Type.IsGossip():
		ev.kind = evGossip
		ev.msg, err = envl.Message()
		if err == nil && ev.msg.Type == "PUT" && ev.msg.MessageID == "" {
			err = fmt.Errorf("%w: PUT without message_id cannot be deduplicated", wire.ErrMalformed)
		}
	default:
		err = fmt.Errorf("%w: a substrate never sends %s", wire.ErrMalformed, envl.Type)
	}
	if err != nil {
		return bad(err)
	}
	return ev
}

// closeCause turns a read error into the reason reported with evClosed.
func closeCause(err error) error {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		// Our side hit the hard limit: the library closed the link (1009).
		return fmt.Errorf("%w: closed by the library: %v", wire.ErrTooLarge, err)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusMessageTooBig {
			return fmt.Errorf("%w: closed by the library: %v", wire.ErrTooLarge, err)
		}
		return fmt.Errorf("closed by substrate (%d %s)", ce.Code, ce.Reason)
	}
	return err
}

func dialOptions(cfg *Config) *websocket.DialOptions {
	opt := &websocket.DialOptions{HTTPHeader: cfg.HTTPHeader}
	if cfg.TLSConfig != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLSConfig
		opt.HTTPClient = &http.Client{Transport: tr}
	}
	return opt
}
