package transport

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/repram/handover/transport/wire"
)

// TestUndeliveredGossipReturnsItsCredit: a duplicate or a too-old message
// takes a delivery credit like any gossip and, never delivered, must give
// it back: after many times more of them than the delivery buffer holds,
// a fresh message still arrives.
func TestUndeliveredGossipReturnsItsCredit(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.DeliveryBuffer = 2
	h, a, _, stop := setup(t, cfg)
	send := func(frame []byte) {
		t.Helper()
		if err := a.SendRaw("t1", websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
	}
	dup := signedPut(t, wire.Message{MessageID: "credit-dup"})
	old := signedPut(t, wire.Message{MessageID: "credit-old", Timestamp: time.Now().Add(-2 * time.Minute).Unix()})
	for range 10 * cfg.DeliveryBuffer {
		send(dup)
		send(old)
	}
	send(signedPut(t, wire.Message{MessageID: "credit-fresh"}))
	h.eventually("a fresh message after the undelivered ones", func() bool { return h.deliveredCount("credit-fresh") == 1 })
	stop()
	h.exactlyOnce()
	if h.deliveredCount("credit-dup") != 1 || h.deliveredCount("credit-old") != 0 {
		t.Fatalf("credit-dup delivered %d times, credit-old %d; want 1 and 0", h.deliveredCount("credit-dup"), h.deliveredCount("credit-old"))
	}
}
