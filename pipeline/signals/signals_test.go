package signals

import (
	"testing"
	"time"

	"churnwatch/schemas"
)

func TestCatalogue(t *testing.T) {
	c := Catalogue()
	if len(c) != 13 {
		t.Fatalf("catalogue has %d signals, SPEC has 13", len(c))
	}
	seen := map[string]bool{}
	for _, s := range c {
		if seen[s.Code] || s.NameZH == "" || s.NameEN == "" || s.When == "" {
			t.Errorf("bad or duplicate entry %+v", s)
		}
		seen[s.Code] = true
	}
	if i, ok := Lookup(PortOut); !ok || i.NameZH != "离网预警" || i.Severity != schemas.SeverityCritical {
		t.Errorf("Lookup(port_out) = %+v", i)
	}
}

func TestWarningIDIsDeterministic(t *testing.T) {
	a := WarningID("13800000001", HotlineCalls, "c-1")
	if a != WarningID("13800000001", HotlineCalls, "c-1") {
		t.Error("same inputs, different ids")
	}
	for _, other := range []string{WarningID("13800000002", HotlineCalls, "c-1"), WarningID("13800000001", PortOut, "c-1"),
		WarningID("13800000001", HotlineCalls, "c-2")} {
		if other == a {
			t.Error("different inputs, same id")
		}
	}
}

func TestScore(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	w := func(id, sig string, sev schemas.Severity, ago time.Duration) Scored {
		return Scored{ID: id, Signal: sig, Severity: sev, DetectedAt: now.Add(-ago)}
	}
	tests := []struct {
		name string
		ws   []Scored
		want int
	}{
		{"nothing", nil, 0},
		{"one fresh critical", []Scored{w("a", PortOut, schemas.SeverityCritical, 0)}, 63},
		{"one fresh medium", []Scored{w("a", HotlineCalls, schemas.SeverityMedium, 0)}, 34},
		{"a week old medium counts half", []Scored{w("a", HotlineCalls, schemas.SeverityMedium, 7*24*time.Hour)}, 19},
		{"older than 30 days is gone", []Scored{w("a", PortOut, schemas.SeverityCritical, 31*24*time.Hour)}, 0},
		{"future warnings do not count", []Scored{w("a", PortOut, schemas.SeverityCritical, -time.Hour)}, 0},
		{"same id twice counts once", []Scored{w("a", PortOut, schemas.SeverityCritical, 0), w("a", PortOut, schemas.SeverityCritical, 0)}, 63},
		{"same signal: strongest only", []Scored{w("a", HotlineCalls, schemas.SeverityMedium, 0), w("b", HotlineCalls, schemas.SeverityHigh, 0)}, 49},
		{"many signals approach but stay under 100", []Scored{w("a", PortOut, schemas.SeverityCritical, 0), w("b", HotlineCalls, schemas.SeverityHigh, 0),
			w("c", ForwardOffnet, schemas.SeverityHigh, 0), w("d", BusinessOp, schemas.SeverityHigh, 0), w("e", SuspensionImminent, schemas.SeverityHigh, 0)}, 97},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Score(now, tt.ws); got != tt.want {
				t.Errorf("Score = %d, want %d", got, tt.want)
			}
		})
	}
	if err := DefaultThresholds().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	bad := DefaultThresholds()
	bad.HotlineCalls.HighCalls = 2
	if bad.Validate() == nil {
		t.Error("high_calls below calls must be refused")
	}
}
