package simulate

import (
	"strconv"
	"time"
)

// Label is the ground truth about one simulated subscriber: whether it
// churns within the window, as which persona, and on which day.
type Label struct {
	// MSISDN is the normalised number (no +86), the messages' key.
	MSISDN string
	// Churner is true for a subscriber who leaves within the window.
	Churner bool
	// Persona is one of Personas for a churner, "" for the loyal.
	Persona string
	// ChurnDay is the local midnight (in Config.Location) starting the day
	// the churner leaves: its DEACTIVATE event comes that afternoon and no
	// event after. A warning helps only if it comes before. Zero for the
	// loyal.
	ChurnDay time.Time
}

// GroundTruth returns the label of every subscriber of the population cfg
// describes, one per subscriber in a fixed order.
// Zero fields take their defaults as in Generate, an End left zero being
// today's local midnight. It derives the population only, without
// generating any event, so it is cheap; the same cfg always gives the same
// labels. It returns nil for a configuration Validate refuses.
func GroundTruth(cfg Config) []Label {
	cfg = cfg.WithDefaults(time.Now())
	if cfg.Validate() != nil {
		return nil
	}
	endDay := absDay(cfg.End, cfg.Location)
	startDay := absDay(cfg.End.AddDate(0, 0, -cfg.Days), cfg.Location)
	subs := buildPopulation(cfg, uint64(cfg.Seed), startDay, endDay)
	out := make([]Label, len(subs))
	for i := range subs {
		s := &subs[i]
		l := Label{MSISDN: strconv.FormatUint(s.msisdn, 10)}
		if s.persona != 0 {
			l.Churner = true
			l.Persona = personaModels[s.persona-1].name
			y, m, d := time.Unix(int64(s.churnDay)*daySecond, 0).UTC().Date()
			l.ChurnDay = time.Date(y, m, d, 0, 0, 0, 0, cfg.Location)
		}
		out[i] = l
	}
	return out
}
