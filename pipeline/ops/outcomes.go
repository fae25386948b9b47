package ops

import (
	"context"

	"churnwatch/pipeline/warehouse"
)

// SignalOutcomes returns the signal_outcomes view: per signal and rule
// version, how often the warnings were followed by a churn.
func (r *Reader) SignalOutcomes(ctx context.Context) ([]warehouse.SignalOutcome, error) {
	return warehouse.ReadSignalOutcomes(ctx, r.conn, r.db)
}
