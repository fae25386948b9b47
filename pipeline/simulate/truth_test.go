package simulate

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"churnwatch/schemas"
)

// localDay is the local midnight starting t's day.
func localDay(t time.Time) time.Time {
	y, m, d := t.In(shanghai).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, shanghai)
}

// offnetMobile tells a forward target on CUCC or CTCC.
func offnetMobile(n string) bool {
	if len(n) != 11 {
		return false
	}
	p := n[:3]
	for _, set := range [][]uint64{prefixesCUCC[:], prefixesCTCC[:]} {
		for _, q := range set {
			if p == strconv.FormatUint(q, 10) {
				return true
			}
		}
	}
	return false
}

// TestGroundTruthMatchesEvents checks the labels against the generated
// events: every churner is deactivated on its churn day and silent after,
// no loyal subscriber is, and each persona shows its behaviours before the
// churn day.
func TestGroundTruthMatchesEvents(t *testing.T) {
	cfg := testConfig(2000, 35)
	cfg.ChurnShare = 0.15
	labels := GroundTruth(cfg)
	if len(labels) != cfg.Subscribers {
		t.Fatalf("%d labels for %d subscribers", len(labels), cfg.Subscribers)
	}
	byMSISDN := map[string]Label{}
	for _, l := range labels {
		byMSISDN[l.MSISDN] = l
	}
	if len(byMSISDN) != len(labels) {
		t.Fatal("two labels share an MSISDN")
	}

	type history struct {
		events     []decoded
		deactivate []time.Time
	}
	hist := map[string]*history{}
	for _, e := range decodeAll(t, collect(t, cfg)) {
		l, ok := byMSISDN[e.msg.Key]
		if !ok {
			t.Fatalf("message for %s, a subscriber without a label", e.msg.Key)
		}
		h := hist[l.MSISDN]
		if h == nil {
			h = &history{}
			hist[l.MSISDN] = h
		}
		h.events = append(h.events, e)
		if e.crm != nil && e.crm.Type == schemas.CRMDeactivate {
			h.deactivate = append(h.deactivate, e.at)
		}
	}
	if len(hist) != len(labels) {
		t.Fatalf("events for %d subscribers, %d labels", len(hist), len(labels))
	}

	start := cfg.End.AddDate(0, 0, -cfg.Days)
	personas := map[string]int{}
	// Per persona: churners who show the persona's behaviour before the churn day.
	shows := map[string]int{}
	for _, l := range labels {
		h := hist[l.MSISDN]
		if !l.Churner {
			if l.Persona != "" || !l.ChurnDay.IsZero() || len(h.deactivate) != 0 {
				t.Fatalf("loyal subscriber %s: persona %q, churn day %v, %d deactivations", l.MSISDN, l.Persona, l.ChurnDay, len(h.deactivate))
			}
			continue
		}
		personas[l.Persona]++
		if l.ChurnDay.Before(start) || !l.ChurnDay.Before(cfg.End) || !l.ChurnDay.Equal(localDay(l.ChurnDay)) {
			t.Fatalf("churn day %v is not a local midnight inside the window [%v, %v)", l.ChurnDay, start, cfg.End)
		}
		if len(h.deactivate) != 1 || !localDay(h.deactivate[0]).Equal(l.ChurnDay) {
			t.Fatalf("churner %s (%s) leaves on %v but is deactivated at %v", l.MSISDN, l.Persona, l.ChurnDay, h.deactivate)
		}
		if last := h.events[len(h.events)-1]; last.crm == nil || last.crm.Type != schemas.CRMDeactivate {
			t.Fatalf("churner %s has events after its deactivation: %s", l.MSISDN, last.msg.Value)
		}
		var offnetFwd, ops, payments, suspension int
		hotlineDays := map[time.Time]int{}
		for _, e := range h.events {
			if !e.at.Before(l.ChurnDay) {
				continue
			}
			switch {
			case e.cdr != nil:
				c := e.cdr
				if c.Direction == schemas.DirectionMO && c.Peer == hotline {
					hotlineDays[localDay(c.StartTime)]++
				}
				if c.Direction == schemas.DirectionFWD && offnetMobile(c.ForwardTo) {
					offnetFwd++
				}
			case e.crm != nil:
				switch e.crm.Type {
				case schemas.CRMPortOutQuery, schemas.CRMPreCancel, schemas.CRMSuspendRequest, schemas.CRMLossReport:
					ops++
				}
			case e.bill != nil:
				b := e.bill
				if b.Type == schemas.BillingPayment && !b.TS.Before(l.ChurnDay.AddDate(0, 0, -12)) {
					payments++
				}
				if b.Type == schemas.BillingArrears || b.Type == schemas.BillingBalance && *b.BalanceFen < 500 {
					suspension++
				}
			}
		}
		week := 0 // most hotline calls in 7 consecutive days
		for d := range hotlineDays {
			n := 0
			for k := range 7 {
				n += hotlineDays[d.AddDate(0, 0, k)]
			}
			week = max(week, n)
		}
		var ok bool
		switch l.Persona {
		case PersonaHotlineComplainer:
			ok = week >= 3
		case PersonaForwarder:
			ok = offnetFwd > 0
		case PersonaFadingUsage:
			ok = true // TestFadingUsageFades judges the group
		case PersonaStopsPaying:
			if payments != 0 {
				t.Errorf("churner %s stops paying but paid %d times in the 12 days before leaving", l.MSISDN, payments)
			}
			ok = suspension > 0
		case PersonaPortingOut:
			if ops == 0 {
				t.Errorf("churner %s ports out but made no port-out query or business operation before leaving", l.MSISDN)
			}
			ok = ops > 0
		default:
			t.Fatalf("unknown persona %q", l.Persona)
		}
		if ok {
			shows[l.Persona]++
		}
	}
	for _, p := range Personas() {
		if personas[p] < 20 {
			t.Errorf("%d churners of persona %s, want a fair share of %d", personas[p], p, cfg.Subscribers*15/100)
		}
	}
	// Chance decides how often a complainer rings in a given week, and, for
	// a churn day early in the window, whether a stop-payer's balance runs
	// out before it.
	t.Logf("churners per persona %v; showing the behaviour before leaving %v", personas, shows)
	for p, want := range map[string]float64{PersonaHotlineComplainer: 0.8, PersonaForwarder: 0.95, PersonaStopsPaying: 0.8, PersonaPortingOut: 1} {
		if share := float64(shows[p]) / float64(personas[p]); share < want {
			t.Errorf("%s: %d of %d churners show the behaviour before leaving, want at least %.0f%%", p, shows[p], personas[p], want*100)
		}
	}
}

// TestFadingUsageFades compares a fading churner's calls in the last week
// before the churn day with its calls two to three weeks earlier.
func TestFadingUsageFades(t *testing.T) {
	cfg := testConfig(3000, 35)
	cfg.ChurnShare = 0.2
	fading := map[string]time.Time{}
	for _, l := range GroundTruth(cfg) {
		if l.Persona == PersonaFadingUsage && !l.ChurnDay.AddDate(0, 0, -21).Before(cfg.End.AddDate(0, 0, -cfg.Days)) {
			fading[l.MSISDN] = l.ChurnDay
		}
	}
	if len(fading) < 20 {
		t.Fatalf("only %d fading churners with three weeks of history", len(fading))
	}
	var last, earlier int
	for _, m := range collect(t, cfg) {
		churn, ok := fading[m.Key]
		if !ok || m.Topic != DefaultCDRTopic {
			continue
		}
		switch d := localDay(m.Time); {
		case !d.Before(churn):
		case !d.Before(churn.AddDate(0, 0, -7)):
			last++
		case !d.Before(churn.AddDate(0, 0, -21)) && d.Before(churn.AddDate(0, 0, -14)):
			earlier++
		}
	}
	if ratio := float64(last) / float64(earlier); ratio > 0.5 {
		t.Errorf("fading churners made %d calls in their last week and %d two weeks before: ratio %.2f, want at most 0.5", last, earlier, ratio)
	}
}

func TestChurnShare(t *testing.T) {
	const n = 20000
	churners := func(share float64) map[string]Label {
		cfg := testConfig(n, 35)
		cfg.ChurnShare = share
		out := map[string]Label{}
		for _, l := range GroundTruth(cfg) {
			if l.Churner {
				out[l.MSISDN] = l
			}
		}
		return out
	}
	for _, tt := range []struct {
		share, want float64
	}{{0, DefaultChurnShare}, {0.03, 0.03}, {0.2, 0.2}, {1, 1}, {NoChurn, 0}} {
		got := len(churners(tt.share))
		sigma := math.Sqrt(n * tt.want * (1 - tt.want))
		if math.Abs(float64(got)-n*tt.want) > 4*sigma+1 {
			t.Errorf("churn share %v: %d churners of %d, want about %.0f", tt.share, got, n, n*tt.want)
		}
	}
	// A larger share adds churners and changes none of the others.
	small, large := churners(0.03), churners(0.2)
	for m, l := range small {
		if large[m] != l {
			t.Fatalf("churner %+v at 3%% is %+v at 20%%", l, large[m])
		}
	}
	// The personas take their shares of the churners.
	count := map[string]int{}
	for _, l := range large {
		count[l.Persona]++
	}
	for i, p := range Personas() {
		want := personaModels[i].weight * float64(len(large))
		if math.Abs(float64(count[p])-want) > 4*math.Sqrt(want)+1 {
			t.Errorf("persona %s: %d of %d churners, want about %.0f", p, count[p], len(large), want)
		}
	}
	// No churner, no deactivation.
	cfg := testConfig(500, 10)
	cfg.ChurnShare = NoChurn
	for _, m := range collect(t, cfg) {
		if m.Topic == DefaultCRMTopic && strings.Contains(string(m.Value), `"DEACTIVATE"`) {
			t.Fatalf("a population without churners has a deactivation: %s", m.Value)
		}
	}
}

func TestGroundTruthIsDeterministic(t *testing.T) {
	cfg := testConfig(3000, 35)
	a, b := GroundTruth(cfg), GroundTruth(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same configuration gave different labels")
	}
	other := cfg
	other.Seed = 8
	if reflect.DeepEqual(a, GroundTruth(other)) {
		t.Fatal("another seed gave the same labels")
	}
	var keys []string
	for _, m := range collect(t, testConfig(300, 3)) {
		if m.Initial {
			keys = append(keys, m.Key)
		}
	}
	var msisdns []string
	for _, l := range GroundTruth(testConfig(300, 3)) {
		msisdns = append(msisdns, l.MSISDN)
	}
	slices.Sort(keys)
	slices.Sort(msisdns)
	if !slices.Equal(keys, msisdns) {
		t.Error("the labels' MSISDNs are not those of the initial profiles")
	}
	if GroundTruth(Config{Subscribers: -1}) != nil {
		t.Error("labels for an invalid configuration")
	}
}

func TestInitialProfilesComeFirst(t *testing.T) {
	cfg := testConfig(700, 2)
	msgs := collect(t, cfg)
	for i, m := range msgs {
		if (i < cfg.Subscribers) != m.Initial {
			t.Fatalf("message %d of %d initial profiles has Initial %v: %s", i, cfg.Subscribers, m.Initial, m.Value)
		}
	}
}

func TestWarmupKeepsChurnAfterIt(t *testing.T) {
	cfg := testConfig(3000, 40)
	cfg.ChurnShare = 0.2
	cfg.Warmup = 28
	after := cfg.End.AddDate(0, 0, -12)
	churners := 0
	for _, l := range GroundTruth(cfg) {
		if !l.Churner {
			continue
		}
		churners++
		if l.ChurnDay.Before(after) {
			t.Fatalf("churn day %v falls in the warm-up, which ends on %v", l.ChurnDay, after)
		}
	}
	if churners < 400 {
		t.Fatalf("%d churners of %d at a share of 0.2", churners, cfg.Subscribers)
	}
	// No churner's behaviour starts in the warm-up.
	full := cfg.WithDefaults(time.Now())
	start := absDay(full.End.AddDate(0, 0, -full.Days), full.Location)
	for _, s := range buildPopulation(full, uint64(full.Seed), start, absDay(full.End, full.Location)) {
		if s.churn != 0 && int64(s.churnStart) < start+int64(cfg.Warmup) {
			t.Fatalf("a churner's behaviour starts on day %d of the window, in the warm-up", int64(s.churnStart)-start)
		}
	}
	bad := cfg
	bad.Warmup = cfg.Days
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "warmup") {
		t.Errorf("a warm-up as long as the window: %v", err)
	}
}
