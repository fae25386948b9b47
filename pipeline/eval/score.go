package eval

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/simulate"
)

// Warning is a warning as the scoring sees it: whom it flags, for which
// signal, and when it was detected.
type Warning struct {
	MSISDN     string
	Signal     string
	DetectedAt time.Time
}

// AnySignal is the code of the row that counts a subscriber flagged by any
// signal except birthday, which is a care occasion, not a churn risk.
const AnySignal = "any_signal"

// Row holds one signal's figures against the ground truth.
type Row struct {
	// Signal is the signal's code, or AnySignal.
	Signal string `json:"signal"`
	// NameZH is the signal's Chinese name, Kind "real time" or "daily".
	NameZH string `json:"name_zh,omitempty"`
	Kind   string `json:"kind,omitempty"`
	// Warnings counts the warnings (rows of the warnings table).
	Warnings int `json:"warnings"`
	// Flagged counts the distinct subscribers warned.
	Flagged int `json:"flagged"`
	// Caught counts the churners warned before their churn day.
	Caught int `json:"churners_caught"`
	// Late counts the churners warned only on or after their churn day.
	Late int `json:"churners_late"`
	// CaughtWithin30, 60 and 90 count the churners caught whose churn day
	// came at most that many days after their first warning's day.
	CaughtWithin30 int `json:"churned_30d"`
	CaughtWithin60 int `json:"churned_60d"`
	CaughtWithin90 int `json:"churned_90d"`
	// Loyal counts the loyal subscribers warned.
	Loyal int `json:"loyal_flagged"`
	// Precision is Caught / (Caught + Loyal): of the subscribers warned in
	// time or for nothing, the share who were about to leave. Nil when
	// nobody was.
	Precision *float64 `json:"precision"`
	// Recall is Caught / churners; nil without churners.
	Recall *float64 `json:"recall"`
	// LoyalRate is Loyal / loyal subscribers: how often the signal raises
	// a false alarm about a subscriber. Nil without loyal subscribers.
	LoyalRate *float64 `json:"loyal_flag_rate"`
	// Lift is Precision over the base churn rate: how many times likelier
	// a warned subscriber is to churn than any subscriber. Nil when either
	// is unknown or the base rate is zero.
	Lift *float64 `json:"lift"`
	// MedianLeadDays is the median, over the churners caught, of the days
	// from the first warning's local day to the churn day (1 = the day
	// before). Nil when none was caught.
	MedianLeadDays *float64 `json:"median_lead_days"`
}

// PersonaRow says how well the signals together (as AnySignal) catch the
// churners of one persona, and which signals catch them.
type PersonaRow struct {
	Persona        string   `json:"persona"`
	Churners       int      `json:"churners"`
	Caught         int      `json:"caught"`
	Recall         *float64 `json:"recall"`
	MedianLeadDays *float64 `json:"median_lead_days"`
	// CaughtBy counts, per signal, the persona's churners it caught.
	CaughtBy map[string]int `json:"caught_by"`
}

// Report is the evaluation of a set of warnings against the ground truth.
type Report struct {
	Subscribers int `json:"subscribers"`
	Churners    int `json:"churners"`
	Loyal       int `json:"loyal"`
	// BaseChurnRate is Churners / Subscribers.
	BaseChurnRate float64 `json:"base_churn_rate"`
	// Signals has one row per signal of the catalogue, in its order, then
	// one per unknown code found in the warnings, then the AnySignal row.
	Signals  []Row        `json:"signals"`
	Personas []PersonaRow `json:"personas"`
}

// Row returns the row of a signal code (or AnySignal).
func (r Report) Row(code string) (Row, bool) {
	for _, row := range r.Signals {
		if row.Signal == code {
			return row, true
		}
	}
	return Row{}, false
}

// Score compares warnings with the ground truth. Days are local days in
// loc: a churner is caught by a warning detected before the midnight that
// starts its churn day, and the lead time counts calendar days from the
// warning's day to the churn day. A warned subscriber without a label
// counts as loyal.
func Score(labels []simulate.Label, warnings []Warning, loc *time.Location) Report {
	rep := Report{Subscribers: len(labels)}
	truth := make(map[string]simulate.Label, len(labels))
	for _, l := range labels {
		truth[l.MSISDN] = l
		if l.Churner {
			rep.Churners++
		}
	}
	rep.Loyal = rep.Subscribers - rep.Churners
	if rep.Subscribers > 0 {
		rep.BaseChurnRate = float64(rep.Churners) / float64(rep.Subscribers)
	}

	// first[code][msisdn] is the subscriber's earliest warning of the code.
	first := map[string]map[string]time.Time{}
	count := map[string]int{}
	note := func(code, msisdn string, at time.Time) {
		m := first[code]
		if m == nil {
			m = map[string]time.Time{}
			first[code] = m
		}
		if t, ok := m[msisdn]; !ok || at.Before(t) {
			m[msisdn] = at
		}
		count[code]++
	}
	for _, w := range warnings {
		note(w.Signal, w.MSISDN, w.DetectedAt)
		if w.Signal != signals.Birthday {
			note(AnySignal, w.MSISDN, w.DetectedAt)
		}
	}

	var codes []string
	known := map[string]bool{}
	for _, info := range signals.Catalogue() {
		codes = append(codes, info.Code)
		known[info.Code] = true
	}
	var unknown []string
	for code := range first {
		if !known[code] && code != AnySignal {
			unknown = append(unknown, code)
		}
	}
	slices.Sort(unknown)
	codes = append(append(codes, unknown...), AnySignal)

	// caughtBy[persona][code] counts the persona's churners a code caught.
	caughtBy := map[string]map[string]int{}
	for _, code := range codes {
		row := Row{Signal: code, Warnings: count[code]}
		if info, ok := signals.Lookup(code); ok {
			row.NameZH, row.Kind = info.NameZH, string(info.Kind)
		}
		var leads []int
		for msisdn, at := range first[code] {
			row.Flagged++
			l, ok := truth[msisdn]
			switch {
			case !ok || !l.Churner:
				row.Loyal++
			case at.Before(l.ChurnDay):
				row.Caught++
				lead := daysBetween(at, l.ChurnDay, loc)
				leads = append(leads, lead)
				for _, h := range []struct {
					days int
					n    *int
				}{{30, &row.CaughtWithin30}, {60, &row.CaughtWithin60}, {90, &row.CaughtWithin90}} {
					if lead <= h.days {
						*h.n++
					}
				}
				if caughtBy[l.Persona] == nil {
					caughtBy[l.Persona] = map[string]int{}
				}
				caughtBy[l.Persona][code]++
			default:
				row.Late++
			}
		}
		row.Precision = ratio(row.Caught, row.Caught+row.Loyal)
		row.Recall = ratio(row.Caught, rep.Churners)
		row.LoyalRate = ratio(row.Loyal, rep.Loyal)
		row.MedianLeadDays = median(leads)
		if row.Precision != nil && rep.BaseChurnRate > 0 {
			lift := *row.Precision / rep.BaseChurnRate
			row.Lift = &lift
		}
		rep.Signals = append(rep.Signals, row)
	}

	personas := simulate.Personas()
	for _, l := range labels {
		if l.Churner && !slices.Contains(personas, l.Persona) {
			personas = append(personas, l.Persona)
		}
	}
	anyFirst := first[AnySignal]
	for _, p := range personas {
		pr := PersonaRow{Persona: p, CaughtBy: map[string]int{}}
		var leads []int
		for _, l := range labels {
			if !l.Churner || l.Persona != p {
				continue
			}
			pr.Churners++
			if at, ok := anyFirst[l.MSISDN]; ok && at.Before(l.ChurnDay) {
				pr.Caught++
				leads = append(leads, daysBetween(at, l.ChurnDay, loc))
			}
		}
		for code, n := range caughtBy[p] {
			if code != AnySignal {
				pr.CaughtBy[code] = n
			}
		}
		pr.Recall = ratio(pr.Caught, pr.Churners)
		pr.MedianLeadDays = median(leads)
		rep.Personas = append(rep.Personas, pr)
	}
	return rep
}

// daysBetween counts the local calendar days from at's day to day's.
func daysBetween(at, day time.Time, loc *time.Location) int {
	date := func(t time.Time) time.Time {
		y, m, d := t.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	return int(date(day).Sub(date(at)).Hours() / 24)
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(n) / float64(d)
	return &v
}

func median(xs []int) *float64 {
	if len(xs) == 0 {
		return nil
	}
	slices.Sort(xs)
	n := len(xs)
	v := float64(xs[n/2])
	if n%2 == 0 {
		v = float64(xs[n/2-1]+xs[n/2]) / 2
	}
	return &v
}

// WriteTable prints the report as aligned text: the signals, a legend,
// and how each persona is caught.
func (r Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ground truth: %d subscribers, %d churners (base churn rate %.2f%%), %d loyal\n\n",
		r.Subscribers, r.Churners, 100*r.BaseChurnRate, r.Loyal)
	sig := [][]string{{"signal", "kind", "warnings", "flagged", "caught", "≤30/60/90 d", "late", "loyal", "precision", "lift", "recall",
		"loyal rate", "lead (d)", "中文"}}
	for _, row := range r.Signals {
		name, kind := row.Signal, row.Kind
		if row.Signal == AnySignal {
			name, kind = "any signal", "but birthday"
		}
		sig = append(sig, []string{name, kind, fmt.Sprint(row.Warnings), fmt.Sprint(row.Flagged),
			fmt.Sprint(row.Caught), fmt.Sprintf("%d/%d/%d", row.CaughtWithin30, row.CaughtWithin60, row.CaughtWithin90),
			fmt.Sprint(row.Late), fmt.Sprint(row.Loyal), fixed(row.Precision, 3), fixed(row.Lift, 1),
			fixed(row.Recall, 3), fixed(row.LoyalRate, 4), fixed(row.MedianLeadDays, 1), row.NameZH})
	}
	writeAligned(&b, sig, 2)
	b.WriteString(`
caught: churners warned before their churn day; late: churners warned only on or after it;
≤30/60/90 d: of those caught, churned within 30/60/90 days of the first warning's day;
loyal: loyal subscribers warned; precision = caught / (caught + loyal); lift = precision / base churn
rate; recall = caught / churners;
loyal rate = loyal / loyal subscribers; lead: median days from the first warning to the churn day.

`)
	per := [][]string{{"persona", "churners", "caught", "recall", "lead (d)", "caught by"}}
	for _, p := range r.Personas {
		type kv struct {
			code string
			n    int
		}
		var by []kv
		for code, n := range p.CaughtBy {
			by = append(by, kv{code, n})
		}
		slices.SortFunc(by, func(a, b kv) int {
			if c := cmp.Compare(b.n, a.n); c != 0 {
				return c
			}
			return cmp.Compare(a.code, b.code)
		})
		parts := make([]string, len(by))
		for i, x := range by {
			parts[i] = fmt.Sprintf("%s %d", x.code, x.n)
		}
		per = append(per, []string{p.Persona, fmt.Sprint(p.Churners), fmt.Sprint(p.Caught), fixed(p.Recall, 3),
			fixed(p.MedianLeadDays, 1), strings.Join(parts, ", ")})
	}
	writeAligned(&b, per, 1)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAligned writes rows as columns two spaces apart: the first left
// columns and the last one aligned left, the others (numbers) right. The
// last column is not padded, so wide characters in it do no harm.
func writeAligned(b *strings.Builder, rows [][]string, left int) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			switch {
			case i == len(row)-1:
				line.WriteString(cell)
			case i < left:
				line.WriteString(cell + pad + "  ")
			default:
				line.WriteString(pad + cell + "  ")
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// fixed formats an optional number with the given decimals, "-" for none.
func fixed(v *float64, decimals int) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.*f", decimals, *v)
}
