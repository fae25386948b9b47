// Package backtest replays the facts already stored in ClickHouse through a
// candidate rule set and scores the warnings it would have raised against
// the churns that followed, without emitting anything: no warning is
// stored, produced or turned into a task. The real-time signals run through
// the state machines of package realtime, fed with the stored CDRs, billing
// and CRM events in event order; the daily signals run through package
// daily's evaluation, one day at a time, over the stored aggregates. The
// scoring is package eval's, with the churns view (a DEACTIVATE, or a
// profile turning inactive) as the ground truth.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"churnwatch/pipeline"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/eval"
	"churnwatch/pipeline/realtime"
	"churnwatch/pipeline/simulate"
	"churnwatch/pipeline/warehouse"
)

// Store is what a backtest reads; *warehouse.Warehouse implements it.
type Store interface {
	daily.Source
	ScanFacts(ctx context.Context, from, to time.Time, s warehouse.FactStreams) error
	Churns(ctx context.Context) (map[string]time.Time, error)
	Subscribers(ctx context.Context) ([]string, error)
}

// Horizon is how long after the last day a churn still counts as one the
// warnings could have foreseen.
const Horizon = 90 * 24 * time.Hour

// Lookback is how much history before the first day is replayed to fill the
// real-time windows, re-alert records and latest bills; its warnings are
// not counted.
const Lookback = 40 * 24 * time.Hour

// Config is the period of a backtest: the local days From to To, both
// included, in Location.
type Config struct {
	From, To time.Time
	Location *time.Location
}

// Validate says what is wrong with the period.
func (c Config) Validate() error {
	switch {
	case c.Location == nil:
		return errors.New("backtest: no time zone")
	case c.From.IsZero() || c.To.IsZero():
		return errors.New("backtest: give both --from and --to (YYYY-MM-DD)")
	case c.To.Before(c.From):
		return fmt.Errorf("backtest: --to %s is before --from %s", c.To.Format(time.DateOnly), c.From.Format(time.DateOnly))
	}
	return nil
}

func (c Config) start() time.Time {
	return time.Date(c.From.Year(), c.From.Month(), c.From.Day(), 0, 0, 0, 0, c.Location)
}

// end is the midnight after the last day.
func (c Config) end() time.Time {
	return time.Date(c.To.Year(), c.To.Month(), c.To.Day()+1, 0, 0, 0, 0, c.Location)
}

// Result is one rule set's backtest.
type Result struct {
	Name        string // the rule file, or what the rules came from
	RuleVersion string
	// Warnings counts, per signal, the warnings it would have raised in the
	// period.
	Warnings map[string]int
	// Report scores them against the churns: the subscribers known, the
	// churners those whose churn falls in the period or within Horizon
	// after it (earlier churners are left out: nothing could warn them
	// beforehand).
	Report eval.Report
}

// Run backtests one rule set over the period.
func Run(ctx context.Context, st Store, name string, rules config.Rules, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if err := rules.Validate(); err != nil {
		return Result{}, fmt.Errorf("backtest %s: %w", name, err)
	}
	res := Result{Name: name, RuleVersion: rules.Version(), Warnings: map[string]int{}}
	start, end := cfg.start(), cfg.end()
	churns, err := st.Churns(ctx)
	if err != nil {
		return res, err
	}
	var found []eval.Warning
	seen := map[string]bool{} // warning ids: an occasion is one warning however many days re-derive it
	keep := func(rows []warehouse.WarningRow) {
		for _, w := range rows {
			if !w.DetectedAt.Before(start) && w.DetectedAt.Before(end) && !seen[w.WarningID] {
				seen[w.WarningID] = true
				res.Warnings[w.Signal]++
				found = append(found, eval.Warning{MSISDN: w.MSISDN, Signal: w.Signal, DetectedAt: w.DetectedAt})
			}
		}
	}

	// Real time: one state per topic over every partition; the facts come
	// in event order, so none is late.
	rt := pipeline.RealtimeRules(rules, pipeline.NumberPlan(rules))
	cdr := realtime.NewCDRState(rt, "", time.Time{}, nil, nil)
	billing := realtime.NewBillingState(rt, "", time.Time{}, nil, nil)
	crm := realtime.NewCRMState(rt, "", time.Time{})
	err = st.ScanFacts(ctx, start.Add(-Lookback), end, warehouse.FactStreams{
		CDR:     func(r *warehouse.CDRRow) error { keep(cdr.Observe(r)); return nil },
		Billing: func(r *warehouse.BillingRow) error { keep(billing.Observe(r)); return nil },
		CRM:     func(r *warehouse.CRMRow) error { keep(crm.Observe(r)); return nil },
	})
	if err != nil {
		return res, err
	}

	// Daily: each day as the scheduler would have evaluated it, with the
	// subscribers who churned later still active on that day.
	dcfg := daily.Config{Thresholds: rules.Thresholds, RuleVersion: res.RuleVersion, Location: cfg.Location}
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		src := asOf{Source: st, churns: churns, end: d.AddDate(0, 0, 1)}
		if _, err := daily.Evaluate(ctx, d, src, collector(keep), dcfg); err != nil {
			return res, fmt.Errorf("backtest %s: daily signals of %s: %w", name, d.Format(time.DateOnly), err)
		}
	}

	subscribers, err := st.Subscribers(ctx)
	if err != nil {
		return res, err
	}
	labels := make([]simulate.Label, 0, len(subscribers))
	for _, m := range subscribers {
		at, churned := churns[m]
		switch {
		case churned && at.Before(start):
			continue
		case churned && at.Before(end.Add(Horizon)):
			y, mo, dd := at.In(cfg.Location).Date()
			labels = append(labels, simulate.Label{MSISDN: m, Churner: true, Persona: "churned", ChurnDay: time.Date(y, mo, dd, 0, 0, 0, 0, cfg.Location)})
		default:
			labels = append(labels, simulate.Label{MSISDN: m})
		}
	}
	res.Report = eval.Score(labels, found, cfg.Location)
	return res, nil
}

// collector is a daily.Publisher that keeps the warnings instead of
// publishing them.
type collector func([]warehouse.WarningRow)

func (c collector) Publish(_ context.Context, rows []warehouse.WarningRow) error {
	c(rows)
	return nil
}

// asOf shows the daily evaluation of a past day the subscribers who churned
// after it as they were then: not deactivated.
type asOf struct {
	daily.Source
	churns map[string]time.Time
	end    time.Time // the midnight after the evaluated day
}

func (a asOf) ScanProfileDates(ctx context.Context, q warehouse.ProfileQuery, fn func(warehouse.ProfileDates) error) error {
	return a.Source.ScanProfileDates(ctx, q, func(p warehouse.ProfileDates) error {
		if at, ok := a.churns[p.MSISDN]; ok && p.Status == daily.StatusDeactivated && !at.Before(a.end) {
			p.Status = "active"
		}
		return fn(p)
	})
}

// WriteComparison prints the results side by side, one line per signal:
// for each rule set the warnings it would have raised, the subscribers
// flagged, the churners caught (warned before their churn day), precision,
// lift, recall and the median lead time in days.
func WriteComparison(w io.Writer, cfg Config, results []Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "backtest %s to %s (%s)\n", cfg.From.Format(time.DateOnly), cfg.To.Format(time.DateOnly), cfg.Location)
	for i, r := range results {
		rep := r.Report
		fmt.Fprintf(&b, "%c: %s, rule version %s\n", 'A'+i, r.Name, r.RuleVersion)
		if i == 0 {
			fmt.Fprintf(&b, "   %d subscribers, %d churned in the period or within %d days after it (base rate %.2f%%)\n",
				rep.Subscribers, rep.Churners, int(Horizon.Hours()/24), 100*rep.BaseChurnRate)
		}
	}
	b.WriteString("\n")
	head := []string{"signal"}
	for i := range results {
		p := string(rune('A' + i))
		head = append(head, p+" warnings", p+" flagged", p+" caught", p+" precision", p+" lift", p+" recall", p+" lead (d)")
	}
	rows := [][]string{head}
	for _, row := range results[0].Report.Signals {
		line := []string{row.Signal}
		if row.Signal == eval.AnySignal {
			line[0] = "any signal but birthday"
		}
		for _, r := range results {
			x, _ := r.Report.Row(row.Signal)
			line = append(line, fmt.Sprint(x.Warnings), fmt.Sprint(x.Flagged), fmt.Sprint(x.Caught), fixed(x.Precision, 3),
				fixed(x.Lift, 1), fixed(x.Recall, 3), fixed(x.MedianLeadDays, 1))
		}
		rows = append(rows, line)
	}
	align(&b, rows)
	b.WriteString(`
caught: churners warned before their churn day; precision = caught / (caught + subscribers flagged who did
not churn); lift = precision / base rate; recall = caught / churners; lead: median days from the first
warning to the churn day. Nothing was stored or published.
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func fixed(v *float64, decimals int) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.*f", decimals, *v)
}

// align writes rows as columns: the first left-aligned, the others right.
func align(b *strings.Builder, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, row := range rows {
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len(c))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
}
