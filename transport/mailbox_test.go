package transport

import (
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/engine"
	"github.com/repram/handover/transport/wire"
)

// mailboxEnv is a linkEnv with only what a mailbox uses.
func mailboxEnv() (linkEnv, chan *link, chan struct{}) {
	ready, loopDone := make(chan *link, 64), make(chan struct{})
	return linkEnv{ready: ready, loopDone: loopDone}, ready, loopDone
}

func rejected(i int) *report {
	return &report{in: engine.FrameRejected{Link: engine.LinkID(i)}}
}

// TestMailboxBatchesInOrderAndSignalsOncePerBatch: reports come out in the
// order they went in, all at once, and only the report that finds the
// mailbox empty signals the loop.
func TestMailboxBatchesInOrderAndSignalsOncePerBatch(t *testing.T) {
	env, ready, _ := mailboxEnv()
	l := new(link)
	for round := range 3 {
		for i := range 10 {
			if !l.post(env, rejected(round*10+i), true) {
				t.Fatal("post refused with the loop running")
			}
		}
		if len(ready) != 1 || <-ready != l {
			t.Fatalf("round %d: %d signals for one batch, want 1", round, len(ready)+1)
		}
		batch := l.take()
		if len(batch) != 10 {
			t.Fatalf("round %d: took %d reports, want 10", round, len(batch))
		}
		for i, r := range batch {
			if got := r.in.(engine.FrameRejected).Link; got != engine.LinkID(round*10+i) {
				t.Fatalf("round %d: report %d is %d: out of order", round, i, got)
			}
		}
		l.done(batch)
		if len(l.take()) != 0 {
			t.Fatalf("round %d: a report was taken twice", round)
		}
	}
}

// TestMailboxReaderSignalsOnFlushOrEverySignalEvery: the reader's reports
// (posted without signal) signal the loop once signalEvery of them wait, or
// when it flushes before it may block; a flush with nothing unsignalled
// sends nothing, and a report with signal does at once.
func TestMailboxReaderSignalsOnFlushOrEverySignalEvery(t *testing.T) {
	env, ready, _ := mailboxEnv()
	l := new(link)
	for i := range signalEvery - 1 {
		l.post(env, rejected(i), false)
	}
	if len(ready) != 0 {
		t.Fatalf("signalled after %d reports, want after %d", signalEvery-1, signalEvery)
	}
	l.post(env, rejected(signalEvery), false)
	if len(ready) != 1 {
		t.Fatalf("%d signals after %d reports, want 1", len(ready), signalEvery)
	}
	<-ready
	l.take()

	l.post(env, rejected(0), false)
	if len(ready) != 0 {
		t.Fatal("a lone report from the reader signalled before a flush")
	}
	l.flush(env)
	l.flush(env)
	if len(ready) != 1 {
		t.Fatalf("%d signals after two flushes of one report, want 1", len(ready))
	}
	<-ready
	if batch := l.take(); len(batch) != 1 {
		t.Fatalf("took %d reports, want 1", len(batch))
	}
	l.flush(env)
	if len(ready) != 0 {
		t.Fatal("a flush of an empty mailbox signalled")
	}
	l.post(env, rejected(0), true)
	if len(ready) != 1 {
		t.Fatal("a report with signal did not signal")
	}
}

// TestMailboxFullStopsEveryReporterUntilTaken: a full mailbox holds its
// reporters (the reader and the pinger) until the loop takes the batch,
// then lets every one of them through: none is left waiting on room there
// is.
func TestMailboxFullStopsEveryReporterUntilTaken(t *testing.T) {
	env, ready, _ := mailboxEnv()
	l := new(link)
	for i := range mailboxMax {
		l.post(env, rejected(i), true)
	}
	<-ready
	var wg sync.WaitGroup
	posted := make(chan int, 2)
	for _, id := range []int{-1, -2} { // the reader and the pinger
		wg.Go(func() {
			l.post(env, rejected(id), true)
			posted <- id
		})
	}
	select {
	case id := <-posted:
		t.Fatalf("reporter %d got past a full mailbox", id)
	case <-time.After(50 * time.Millisecond):
	}
	if batch := l.take(); len(batch) != mailboxMax {
		t.Fatalf("took %d reports, want %d", len(batch), mailboxMax)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of 2 waiting reporters released by the take", len(posted))
	}
	if batch := l.take(); len(batch) != 2 {
		t.Fatalf("took %d reports after the release, want 2", len(batch))
	}
}

// TestMailboxRefusesOnceTheLoopExits: a reporter waiting for room, or
// posting afresh, gives up once the loop has exited.
func TestMailboxRefusesOnceTheLoopExits(t *testing.T) {
	env, _, loopDone := mailboxEnv()
	l := new(link)
	for i := range mailboxMax {
		l.post(env, rejected(i), true)
	}
	refused := make(chan bool)
	go func() { refused <- !l.post(env, rejected(-1), true) }()
	close(loopDone)
	select {
	case ok := <-refused:
		if !ok {
			t.Fatal("a post into a full mailbox succeeded after the loop exited")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a post into a full mailbox still waits after the loop exited")
	}
	env.ready = make(chan *link) // unbuffered, never read: the signal cannot go
	if new(link).post(env, rejected(0), true) {
		t.Fatal("a post succeeded after the loop exited")
	}
}

// TestLoneFrameIsDeliveredWhenTheStreamPauses: the reader leaves its
// reports unsignalled while it has frames buffered, so the one before a
// pause must be signalled when the reader goes back to the socket: here a
// single put, with nothing after it and no ping due for an hour (a ping's
// report would carry it to the loop too).
func TestLoneFrameIsDeliveredWhenTheStreamPauses(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.Tuning.HeartbeatInterval = time.Hour
	cfg.Tuning.SuspectMin, cfg.Tuning.SuspectMax = time.Hour, time.Hour
	h := newHarness(t, cfg)
	a := h.start("sub-a", 0)
	h.attach(a)
	h.eventually("the first ping answered", func() bool { return h.node.Status().PrimaryRTT > 0 })
	if err := a.SendRaw("t1", websocket.MessageText, signedPut(t, wire.Message{MessageID: "lone"})); err != nil {
		t.Fatal(err)
	}
	h.eventually("the lone put delivered", func() bool { return h.deliveredCount("lone") == 1 })
}
