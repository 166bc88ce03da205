package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/repram/handover/transport/dedup"
)

// Invalid tuning is refused by New with an error naming the field and what
// is allowed, never a panic; the smallest valid values are accepted.
func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		tuning  Tuning
		wantErr string // "" = accepted
	}{
		{name: "defaults", tuning: Tuning{}},
		{name: "dedup smallest capacity", tuning: Tuning{Dedup: dedup.Config{Capacity: 2}}},
		{name: "dedup window only", tuning: Tuning{Dedup: dedup.Config{Window: time.Second}}},
		{name: "dedup capacity 1", tuning: Tuning{Dedup: dedup.Config{Capacity: 1}}, wantErr: "Capacity must be zero"},
		{name: "dedup negative capacity", tuning: Tuning{Dedup: dedup.Config{Capacity: -5}}, wantErr: "Capacity must be zero"},
		{name: "dedup negative window", tuning: Tuning{Dedup: dedup.Config{Window: -time.Second}}, wantErr: "Window must not be negative"},
		{name: "negative duration", tuning: Tuning{AttemptDelay: -time.Millisecond}, wantErr: "AttemptDelay is negative"},
		{name: "grace below floor", tuning: Tuning{OverlapFloor: time.Second, OverlapGrace: time.Millisecond}, wantErr: "below OverlapFloor"},
		{name: "race width", tuning: Tuning{RaceWidth: -1}, wantErr: "RaceWidth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				e   *Engine
				err error
			)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("New panicked: %v", r)
					}
				}()
				e, err = New(Config{NodeID: "me", Tuning: tc.tuning})
			}()
			if tc.wantErr == "" {
				if err != nil || e == nil {
					t.Fatalf("New: %v, want an engine", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
