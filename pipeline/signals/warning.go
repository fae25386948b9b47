package signals

import (
	"math"
	"time"

	"github.com/google/uuid"

	"churnwatch/schemas"
)

// warningNamespace makes warning ids UUIDs of their own space.
var warningNamespace = uuid.MustParse("6f1d2c1e-8a7b-4f55-9c1a-4b2f0e3d7a10")

// WarningID is deterministic: the same subscriber, signal and anchor (the
// completing event's id for real-time signals, the evaluated day or the
// occasion's date for daily ones) always give the same id, so a replay or a
// second run of a day produces no second warning.
func WarningID(msisdn, signal, anchor string) string {
	return uuid.NewSHA1(warningNamespace, []byte(msisdn+"|"+signal+"|"+anchor)).String()
}

// SeverityWeight is a severity's contribution to the churn score when fresh.
func SeverityWeight(s schemas.Severity) float64 {
	switch s {
	case schemas.SeverityCritical:
		return 60
	case schemas.SeverityHigh:
		return 40
	case schemas.SeverityMedium:
		return 25
	case schemas.SeverityLow:
		return 10
	default:
		return 3
	}
}

// ScoreHalfLife is how fast a warning's weight in the score decays.
const ScoreHalfLife = 7 * 24 * time.Hour

// ScoreHorizon is how far back warnings still count.
const ScoreHorizon = 30 * 24 * time.Hour

// Scored is a past warning as the score sees it.
type Scored struct {
	ID         string
	Signal     string
	Severity   schemas.Severity
	DetectedAt time.Time
}

// Score is the subscriber's churn score (0-100) at time at: the severity
// weights of its warnings detected in (at - ScoreHorizon, at], each halved
// every ScoreHalfLife of age, summed with diminishing returns. Warnings with
// the same id count once; for one signal only its strongest recent warning
// counts, so a repeated signal does not saturate the score.
func Score(at time.Time, warnings []Scored) int {
	seen := map[string]bool{}
	best := map[string]float64{}
	for _, w := range warnings {
		age := at.Sub(w.DetectedAt)
		if seen[w.ID] || age < 0 || age >= ScoreHorizon {
			continue
		}
		seen[w.ID] = true
		v := SeverityWeight(w.Severity) * math.Exp2(-age.Hours()/ScoreHalfLife.Hours())
		best[w.Signal] = max(best[w.Signal], v)
	}
	var sum float64
	for _, v := range best {
		sum += v
	}
	// 100 * (1 - e^(-sum/60)): one fresh critical warning is 63, a high one
	// 49, a medium one 34; several together approach 100 but never pass it.
	return int(math.Round(100 * (1 - math.Exp(-sum/60))))
}
