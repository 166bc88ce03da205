package transport

import (
	"context"
	"strings"
	"testing"

	"github.com/repram/handover/transport/dedup"
)

// A bad dedup size reaches the embedder as New's error, not as a panic.
func TestNewRefusesInvalidDedup(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.Tuning.Dedup = dedup.Config{Capacity: 1}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("New panicked: %v", r)
		}
	}()
	n, err := New(cfg)
	if err == nil {
		_ = n.Close(context.Background())
		t.Fatal("New accepted Dedup.Capacity 1")
	}
	if !strings.Contains(err.Error(), "Dedup") {
		t.Fatalf("New: %v, want an error naming Dedup", err)
	}
}
