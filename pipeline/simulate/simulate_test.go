package simulate

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"churnwatch/schemas"
)

var shanghai = time.FixedZone("CST", 8*3600)

// testEnd is a Monday midnight; the 35-day window before it spans the 1st of
// November, so monthly bills are in it.
var testEnd = time.Date(2026, 11, 23, 0, 0, 0, 0, shanghai)

func testConfig(subscribers, days int) Config {
	return Config{Subscribers: subscribers, Days: days, End: testEnd, Location: shanghai, Seed: 7}
}

func collect(t testing.TB, cfg Config) []Message {
	t.Helper()
	var out []Message
	if err := Generate(cfg, Topics{}, func(m Message) error {
		out = append(out, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func digest(t *testing.T, cfg Config) string {
	t.Helper()
	h := sha256.New()
	if err := Generate(cfg, Topics{}, func(m Message) error {
		fmt.Fprintf(h, "%s|%s|%d|%v|", m.Topic, m.Key, m.Time.UnixNano(), m.Invalid)
		h.Write(m.Value)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestGenerateIsDeterministic(t *testing.T) {
	cfg := testConfig(300, 10)
	cfg.InvalidShare = 0.02
	first := digest(t, cfg)
	if again := digest(t, cfg); again != first {
		t.Fatal("the same configuration produced different output")
	}
	other := cfg
	other.Seed = 8
	if digest(t, other) == first {
		t.Fatal("a different seed produced the same output")
	}
	defaultSeed := cfg
	defaultSeed.Seed = 0
	one := cfg
	one.Seed = 1
	if digest(t, defaultSeed) != digest(t, one) {
		t.Fatal("seed 0 should mean the default seed 1")
	}
}

type decoded struct {
	msg    Message
	msisdn string
	id     string
	at     time.Time
	cdr    *schemas.CDR
	bill   *schemas.BillingEvent
	crm    *schemas.CRMEvent
}

func decodeAll(t *testing.T, msgs []Message) []decoded {
	t.Helper()
	var out []decoded
	for _, m := range msgs {
		if m.Invalid {
			continue
		}
		d := decoded{msg: m}
		switch m.Topic {
		case DefaultCDRTopic:
			c, err := schemas.DecodeCDR(m.Value)
			if err != nil {
				t.Fatalf("CDR does not decode: %v\n%s", err, m.Value)
			}
			d.cdr, d.msisdn, d.id, d.at = &c, c.MSISDN, c.EventID, c.StartTime
		case DefaultBillingTopic:
			b, err := schemas.DecodeBilling(m.Value)
			if err != nil {
				t.Fatalf("billing event does not decode: %v\n%s", err, m.Value)
			}
			d.bill, d.msisdn, d.id, d.at = &b, b.MSISDN, b.EventID, b.TS
		case DefaultCRMTopic:
			e, err := schemas.DecodeCRM(m.Value)
			if err != nil {
				t.Fatalf("CRM event does not decode: %v\n%s", err, m.Value)
			}
			d.crm, d.msisdn, d.id, d.at = &e, e.MSISDN, e.EventID, e.TS
		default:
			t.Fatalf("unexpected topic %q", m.Topic)
		}
		out = append(out, d)
	}
	return out
}

func TestGeneratedMessagesAreValidAndOrdered(t *testing.T) {
	cfg := testConfig(1000, 35)
	msgs := collect(t, cfg)
	events := decodeAll(t, msgs)
	if len(events) != len(msgs) {
		t.Fatalf("%d of %d messages are marked invalid with InvalidShare 0", len(msgs)-len(events), len(msgs))
	}
	start := cfg.End.AddDate(0, 0, -cfg.Days)
	ids := make(map[string]bool, len(events))
	lastByTopic := map[string]time.Time{}
	firstSeen := map[string]*decoded{}
	plus86 := 0
	for i := range events {
		e := &events[i]
		m := e.msg
		if e.msisdn != m.Key {
			t.Fatalf("key %q is not the message's normalised msisdn %q", m.Key, e.msisdn)
		}
		if !strings.Contains("13 15 18", m.Key[:2]) {
			t.Fatalf("msisdn %s does not start with 13, 15 or 18", m.Key)
		}
		if bytes.Contains(m.Value, []byte(`"msisdn":"+86`)) {
			plus86++
		}
		if !bytes.Contains(m.Value, []byte(`+08:00"`)) || bytes.Contains(m.Value, []byte(`Z"`)) {
			t.Fatalf("times must carry the +08:00 offset: %s", m.Value)
		}
		if !e.at.Equal(m.Time) {
			t.Fatalf("Message.Time %v differs from the event time %v", m.Time, e.at)
		}
		if e.at.Before(start) || !e.at.Before(cfg.End) {
			t.Fatalf("event time %v outside the window [%v, %v)", e.at, start, cfg.End)
		}
		if e.at.Before(lastByTopic[m.Topic]) {
			t.Fatalf("%s: %v comes after %v", m.Topic, e.at, lastByTopic[m.Topic])
		}
		lastByTopic[m.Topic] = e.at
		if ids[e.id] {
			t.Fatalf("event id %s used twice", e.id)
		}
		ids[e.id] = true
		if firstSeen[e.msisdn] == nil {
			firstSeen[e.msisdn] = e
			if e.crm == nil || e.crm.Type != schemas.CRMProfile || e.crm.Profile.Tier == nil ||
				e.crm.Profile.Status == nil || *e.crm.Profile.Status != "active" || e.crm.Profile.Name == nil {
				t.Fatalf("a subscriber's first message must be its full profile, got %s", m.Value)
			}
		}
	}
	if len(firstSeen) != cfg.Subscribers {
		t.Errorf("%d distinct subscribers, want %d", len(firstSeen), cfg.Subscribers)
	}
	if plus86 == 0 {
		t.Error("no msisdn carries a +86 prefix")
	}
}

func TestWindowEdges(t *testing.T) {
	tests := []struct {
		name string
		cfg  func() (Config, bool)
	}{
		{"end in the afternoon", func() (Config, bool) {
			cfg := testConfig(200, 3)
			cfg.End = time.Date(2026, 11, 23, 15, 30, 0, 0, shanghai)
			return cfg, true
		}},
		{"a day with a DST change", func() (Config, bool) {
			berlin, err := time.LoadLocation("Europe/Berlin")
			if err != nil {
				return Config{}, false
			}
			cfg := testConfig(200, 4)
			cfg.Location, cfg.End = berlin, time.Date(2026, 10, 27, 0, 0, 0, 0, berlin)
			return cfg, true
		}},
		{"a single day", func() (Config, bool) { return testConfig(200, 1), true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ok := tt.cfg()
			if !ok {
				t.Skip("no time zone database")
			}
			start := cfg.End.AddDate(0, 0, -cfg.Days)
			var last time.Time
			profiles := 0
			for _, e := range decodeAll(t, collect(t, cfg)) {
				if e.at.Before(start) || !e.at.Before(cfg.End) {
					t.Fatalf("event time %v outside [%v, %v)", e.at, start, cfg.End)
				}
				if e.at.Before(last) {
					t.Fatalf("%v comes after %v", e.at, last)
				}
				last = e.at
				if e.crm != nil && e.crm.Type == schemas.CRMProfile && e.crm.Profile.Tier != nil {
					profiles++
				}
			}
			if profiles != cfg.Subscribers {
				t.Errorf("%d profiles for %d subscribers", profiles, cfg.Subscribers)
			}
		})
	}
}

// TestPopulationLooksReal checks the behaviours the pipeline's signals feed
// on, so that a demo run has something to show.
func TestPopulationLooksReal(t *testing.T) {
	cfg := testConfig(2000, 35)
	events := decodeAll(t, collect(t, cfg))
	counts := map[string]int{}
	var calls, withNetwork, night, fwdOffnet, landline, zero, long int
	hotlineLastWeek := map[string]int{}
	weekAgo := cfg.End.AddDate(0, 0, -7)
	for _, e := range events {
		switch {
		case e.cdr != nil:
			c := e.cdr
			calls++
			counts[string(c.Direction)]++
			if c.PeerNetwork != "" {
				withNetwork++
			}
			if h := c.StartTime.Hour(); h < 6 {
				night++
			}
			if c.DurationS < 0 || c.DurationS > 3600 {
				t.Fatalf("duration %d outside 0..3600", c.DurationS)
			}
			if c.DurationS == 0 {
				zero++
			}
			if c.DurationS > 600 {
				long++
			}
			if strings.HasPrefix(c.Peer, "0") {
				landline++
			}
			if c.Direction == schemas.DirectionFWD && (strings.HasPrefix(c.ForwardTo, "13") && strings.Contains("0 1 2 3", c.ForwardTo[2:3]) ||
				strings.HasPrefix(c.ForwardTo, "18") && strings.Contains("0 1 5 6 9", c.ForwardTo[2:3])) {
				fwdOffnet++
			}
			if c.Direction == schemas.DirectionMO && c.Peer == "10086" {
				counts["MO 10086"]++
				if !c.StartTime.Before(weekAgo) {
					hotlineLastWeek[c.MSISDN]++
				}
			}
			if c.Direction == schemas.DirectionMO && (c.Peer == "10010" || c.Peer == "10000") {
				counts["competitor hotline"]++
			}
		case e.bill != nil:
			counts[string(e.bill.Type)]++
			if e.bill.Type == schemas.BillingBill && e.bill.BillMonth != "2026-10" {
				t.Errorf("the bill issued in November is for %s, want 2026-10", e.bill.BillMonth)
			}
		case e.crm != nil:
			counts[string(e.crm.Type)]++
			if e.crm.Type == schemas.CRMProfile && e.crm.Profile.Tier == nil {
				counts["partial PROFILE"]++
			}
		}
	}
	perDay := float64(calls) / float64(cfg.Subscribers*cfg.Days)
	if perDay < 3 || perDay > 12 {
		t.Errorf("%.1f calls per subscriber-day, want a few", perDay)
	}
	if share := float64(withNetwork) / float64(calls); share < 0.45 || share > 0.55 {
		t.Errorf("peer_network on %.0f%% of CDRs, want about half", share*100)
	}
	if share := float64(night) / float64(calls); share > 0.03 {
		t.Errorf("%.1f%% of calls between midnight and 6:00, want waking hours", share*100)
	}
	if zero == 0 || long == 0 || landline == 0 {
		t.Errorf("want unanswered (%d), long (%d) and landline (%d) calls", zero, long, landline)
	}
	if share := float64(counts["MO"]) / float64(calls); share < 0.4 || share > 0.6 {
		t.Errorf("%.0f%% of calls are MO, want about half", share*100)
	}
	repeatedHotline := 0
	for _, n := range hotlineLastWeek {
		if n >= 3 {
			repeatedHotline++
		}
	}
	if repeatedHotline == 0 || repeatedHotline > cfg.Subscribers/50 {
		t.Errorf("%d subscribers called 10086 three times or more in the last week, want a few", repeatedHotline)
	}
	if fwdOffnet == 0 {
		t.Error("no call forwarded to another network")
	}
	for _, kind := range []string{"FWD", "MO 10086", "competitor hotline", "BILL", "PAYMENT", "BALANCE", "ARREARS",
		"PORT_OUT_QUERY", "partial PROFILE"} {
		if counts[kind] == 0 {
			t.Errorf("no %s in %d subscribers over %d days", kind, cfg.Subscribers, cfg.Days)
		}
	}
	if counts["BILL"] > cfg.Subscribers || counts["BILL"] < cfg.Subscribers-counts["DEACTIVATE"] {
		t.Errorf("%d monthly bills for %d subscribers", counts["BILL"], cfg.Subscribers)
	}
	if rare := counts["PORT_OUT_QUERY"] + counts["PRE_CANCEL"] + counts["SUSPEND_REQUEST"] + counts["LOSS_REPORT"]; rare > cfg.Subscribers/20 {
		t.Errorf("%d business operations, want them rare", rare)
	}
}

func TestInvalidMessagesFailToDecode(t *testing.T) {
	cfg := testConfig(300, 14)
	cfg.InvalidShare = 0.05
	valid, invalid := 0, 0
	fields := map[string]int{}
	for _, m := range collect(t, cfg) {
		var err error
		switch m.Topic {
		case DefaultCDRTopic:
			_, err = schemas.DecodeCDR(m.Value)
		case DefaultBillingTopic:
			_, err = schemas.DecodeBilling(m.Value)
		case DefaultCRMTopic:
			_, err = schemas.DecodeCRM(m.Value)
		}
		if !m.Invalid {
			valid++
			if err != nil {
				t.Fatalf("valid message does not decode: %v\n%s", err, m.Value)
			}
			continue
		}
		invalid++
		var fe *schemas.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("invalid message decodes (err %v): %s", err, m.Value)
		}
		fields[fe.Field]++
	}
	if share := float64(invalid) / float64(valid); math.Abs(share-cfg.InvalidShare) > 0.01 {
		t.Errorf("%d invalid per %d valid messages, want a share of about %v", invalid, valid, cfg.InvalidShare)
	}
	// One kind each: bad msisdn, unknown enum, not JSON (no field), missing field.
	for _, f := range []string{"msisdn", "direction", "type", "", "duration_s", "ts"} {
		if fields[f] == 0 {
			t.Errorf("no invalid message rejected for field %q (got %v)", f, fields)
		}
	}
}

func countTopics(t *testing.T, cfg Config) map[string]int {
	t.Helper()
	n := map[string]int{}
	if err := Generate(cfg, Topics{}, func(m Message) error {
		n[m.Topic]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCountsScale(t *testing.T) {
	base := countTopics(t, testConfig(400, 14))
	tests := []struct {
		name        string
		cfg         Config
		cdr, events float64 // expected ratios of CDRs and of all messages to base
	}{
		{"twice the subscribers", testConfig(800, 14), 2, 2},
		{"twice the days", testConfig(400, 28), 2, 2},
		{"a quarter of the subscribers", testConfig(100, 14), 0.25, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := countTopics(t, tt.cfg)
			ratio := float64(got[DefaultCDRTopic]) / float64(base[DefaultCDRTopic])
			if math.Abs(ratio-tt.cdr)/tt.cdr > 0.15 {
				t.Errorf("CDRs: %d vs %d, ratio %.2f, want about %.2f", got[DefaultCDRTopic], base[DefaultCDRTopic], ratio, tt.cdr)
			}
			if got[DefaultBillingTopic] == 0 || got[DefaultCRMTopic] == 0 {
				t.Errorf("no billing or CRM events: %v", got)
			}
		})
	}
}

func TestTierShares(t *testing.T) {
	tests := []struct {
		name   string
		shares map[schemas.Tier]float64
	}{
		{"defaults", nil},
		{"custom", map[schemas.Tier]float64{schemas.TierGold: 0.5, schemas.TierStandard: 0.5}},
		{"all diamond", map[schemas.Tier]float64{schemas.TierDiamond: 1}},
	}
	const n = 20000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(n, 1)
			cfg.TierShares = tt.shares
			want := tt.shares
			if want == nil {
				want = DefaultTierShares()
			}
			got := map[schemas.Tier]int{}
			for _, m := range collect(t, cfg) {
				if m.Topic != DefaultCRMTopic {
					continue
				}
				e, err := schemas.DecodeCRM(m.Value)
				if err != nil {
					t.Fatal(err)
				}
				if e.Type == schemas.CRMProfile && e.Profile.Tier != nil {
					got[*e.Profile.Tier]++
				}
			}
			for _, tier := range schemas.Tiers {
				p := want[tier]
				sigma := math.Sqrt(n * p * (1 - p))
				if diff := math.Abs(float64(got[tier]) - n*p); diff > 4*sigma+1 {
					t.Errorf("%s: %d of %d subscribers, want about %.0f", tier, got[tier], n, n*p)
				}
			}
		})
	}
}

func TestProfilesNameManagersOfTheirRegion(t *testing.T) {
	cfg := testConfig(3000, 1)
	cfg.Regions = []string{"r-a", "r-b"}
	cfg.Managers = 2
	promoSoon, noManager := 0, 0
	for _, m := range collect(t, cfg) {
		if m.Topic != DefaultCRMTopic {
			continue
		}
		e, err := schemas.DecodeCRM(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		p := e.Profile
		if e.Type != schemas.CRMProfile || p.Tier == nil {
			continue
		}
		allowed := map[string][]string{"r-a": {"-001", "-002"}, "r-b": {"-003", "-004"}}[*p.Region]
		if allowed == nil {
			t.Fatalf("unknown region %q", *p.Region)
		}
		for _, mgr := range []*string{p.AccountManager, p.PhoneManager} {
			if mgr != nil && !strings.HasSuffix(*mgr, allowed[0]) && !strings.HasSuffix(*mgr, allowed[1]) {
				t.Errorf("%s subscriber has manager %s from another region", *p.Region, *mgr)
			}
		}
		tier := *p.Tier
		switch {
		case (tier == schemas.TierDiamond || tier == schemas.TierGold) && p.AccountManager == nil,
			tier == schemas.TierSilver && p.PhoneManager == nil:
			noManager++
		case tier == schemas.TierStandard && (p.AccountManager != nil || p.PhoneManager != nil):
			t.Errorf("a standard subscriber has a manager: %s", m.Value)
		case tier == schemas.TierSilver && p.AccountManager != nil:
			t.Errorf("a silver subscriber has an account manager: %s", m.Value)
		}
		if p.PromoEnd != nil {
			end, err := time.ParseInLocation(time.DateOnly, *p.PromoEnd, shanghai)
			if err != nil {
				t.Fatal(err)
			}
			if !end.Before(cfg.End) && end.Before(cfg.End.AddDate(0, 0, 30)) {
				promoSoon++
			}
		}
		if _, err := time.Parse(time.DateOnly, *p.Birthday); err != nil {
			t.Errorf("birthday: %v", err)
		}
	}
	if promoSoon < 50 || promoSoon > 300 {
		t.Errorf("%d of %d promotions end within 30 days, want some", promoSoon, cfg.Subscribers)
	}
	if noManager == 0 || noManager > 60 {
		t.Errorf("%d high-value subscribers without a manager, want a few", noManager)
	}
}

func TestMSISDNsAreUnique(t *testing.T) {
	for _, seed := range []uint64{1, 2, 99} {
		num := newNumbering(seed)
		seen := make(map[uint64]bool, 1_000_000)
		for i := range 1_000_000 {
			m := num.msisdn(i)
			if m < 13_000_000_000 || m >= 19_000_000_000 || seen[m] {
				t.Fatalf("seed %d: msisdn %d of subscriber %d is out of range or repeated", seed, m, i)
			}
			seen[m] = true
		}
	}
}

func TestOverlappingWindowsAgree(t *testing.T) {
	// Ordinary subscribers' days depend on the date, not on the window, so
	// runs a day apart repeat most events of the days they share.
	a, b := testConfig(300, 5), testConfig(300, 5)
	b.End = b.End.AddDate(0, 0, 1)
	day := a.End.AddDate(0, 0, -2)
	onDay := func(cfg Config) map[string]string {
		out := map[string]string{}
		for _, m := range collect(t, cfg) {
			if m.Topic == DefaultCDRTopic && !m.Time.Before(day) && m.Time.Before(day.AddDate(0, 0, 1)) {
				var c struct {
					EventID string `json:"event_id"`
				}
				if err := json.Unmarshal(m.Value, &c); err != nil {
					t.Fatal(err)
				}
				out[c.EventID] = string(m.Value)
			}
		}
		return out
	}
	x, y := onDay(a), onDay(b)
	same := 0
	for id, v := range x {
		if y[id] == v {
			same++
		}
	}
	if float64(same) < 0.9*float64(len(x)) {
		t.Errorf("only %d of %d CDRs of a shared day are the same", same, len(x))
	}
}

func TestGenerateStopsOnEmitError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := Generate(testConfig(50, 3), Topics{}, func(Message) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 10 {
		t.Fatalf("Generate returned %v after %d calls, want the emit error after 10", err, calls)
	}
}

func TestTopicNames(t *testing.T) {
	topics := Topics{CDR: "p.cdr", Billing: "p.billing", CRM: "p.crm"}
	seen := map[string]bool{}
	if err := Generate(testConfig(20, 3), topics, func(m Message) error {
		seen[m.Topic] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || !seen["p.cdr"] || !seen["p.billing"] || !seen["p.crm"] {
		t.Errorf("topics used: %v", seen)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"zero value means defaults", Config{}, ""},
		{"explicit", testConfig(10, 3), ""},
		{"negative subscribers", Config{Subscribers: -1}, "subscribers"},
		{"too many subscribers", Config{Subscribers: MaxSubscribers + 1}, "subscribers"},
		{"negative days", Config{Days: -3}, "days"},
		{"window before 2000", Config{End: time.Date(2000, 1, 10, 0, 0, 0, 0, time.UTC)}, "end"},
		{"unknown tier", Config{TierShares: map[schemas.Tier]float64{"platinum": 1}}, "unknown tier"},
		{"shares not adding up", Config{TierShares: map[schemas.Tier]float64{schemas.TierGold: 0.5}}, "add up to 1"},
		{"negative share", Config{TierShares: map[schemas.Tier]float64{schemas.TierGold: -0.5, schemas.TierSilver: 1.5}}, "between 0 and 1"},
		{"empty regions", Config{Regions: []string{}}, "regions"},
		{"blank region", Config{Regions: []string{"a", " "}}, "empty"},
		{"duplicate region", Config{Regions: []string{"a", "a"}}, "twice"},
		{"negative managers", Config{Managers: -1}, "managers"},
		{"invalid share above 1", Config{InvalidShare: 1.5}, "invalid share"},
		{"invalid share NaN", Config{InvalidShare: math.NaN()}, "invalid share"},
		{"churn share above 1", Config{ChurnShare: 1.01}, "churn share"},
		{"churn share NaN", Config{ChurnShare: math.NaN()}, "churn share"},
		{"no churners", Config{ChurnShare: NoChurn}, ""},
		{"negative rate", Config{Rate: -1}, "rate"},
		{"infinite rate", Config{Rate: math.Inf(1)}, "rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if err := Generate(Config{Subscribers: -1}, Topics{}, func(Message) error { return nil }); err == nil {
		t.Error("Generate accepted an invalid configuration")
	}
}

func TestWithDefaults(t *testing.T) {
	now := time.Date(2026, 11, 22, 17, 30, 0, 0, time.UTC) // 01:30 on the 23rd in Shanghai
	c := Config{Location: shanghai}.WithDefaults(now)
	if !c.End.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, shanghai)) {
		t.Errorf("default End = %v, want local midnight of the 23rd", c.End)
	}
	if c.Subscribers != DefaultSubscribers || c.Days != DefaultDays || c.Seed != DefaultSeed ||
		c.Managers != DefaultManagers || len(c.Regions) == 0 || len(c.TierShares) != 4 || c.ChurnShare != DefaultChurnShare {
		t.Errorf("defaults not applied: %+v", c)
	}
	if loc := (Config{}).WithDefaults(now).Location; loc == nil {
		t.Error("no default location")
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := testConfig(2000, 35)
	var n int64
	for b.Loop() {
		n = 0
		if err := Generate(cfg, Topics{}, func(Message) error {
			n++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "messages/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}

// TestProfilesCarryWorkbenchFields checks the workbench's profile fields:
// each for a share of the population, the network age from the join date,
// one name and level per enterprise group, the same on every run.
func TestProfilesCarryWorkbenchFields(t *testing.T) {
	cfg := testConfig(2000, 1)
	profiles := map[string]string{}
	var n, age, interests, products, groups int
	groupOf := map[string]schemas.Group{}
	for _, m := range collect(t, cfg) {
		if m.Topic != DefaultCRMTopic || m.Invalid {
			continue
		}
		e, err := schemas.DecodeCRM(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		p := e.Profile
		if e.Type != schemas.CRMProfile || p.Tier == nil {
			continue
		}
		n++
		profiles[e.MSISDN] = string(m.Value)
		if p.NetworkAgeMonths != nil {
			age++
			join, err := time.ParseInLocation(time.DateOnly, *p.JoinDate, shanghai)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.End.Sub(join).Hours() / 24 / 30.44; math.Abs(got-float64(*p.NetworkAgeMonths)) > 1.1 {
				t.Errorf("network age %d months for a subscriber who joined on %s", *p.NetworkAgeMonths, *p.JoinDate)
			}
		}
		if p.Interests != nil {
			interests++
		}
		if p.Products != nil {
			products++
		}
		if g := p.Group; g != nil {
			groups++
			if prev, ok := groupOf[g.ID]; ok && prev != *g {
				t.Errorf("group %s is %+v and %+v", g.ID, prev, *g)
			}
			groupOf[g.ID] = *g
		}
	}
	share := func(k int) float64 { return float64(k) / float64(n) }
	if n != cfg.Subscribers || share(age) < 0.75 || share(age) > 0.85 || share(interests) < 0.44 || share(interests) > 0.56 ||
		share(products) < 0.25 || share(products) > 0.6 || share(groups) < 0.05 || share(groups) > 0.4 {
		t.Errorf("%d profiles: network age %.2f, interests %.2f, products %.2f, groups %.2f", n, share(age), share(interests), share(products), share(groups))
	}
	levels := map[schemas.GroupLevel]bool{}
	for _, g := range groupOf {
		levels[g.Level] = true
	}
	if len(groupOf) < 10 || len(levels) < 3 {
		t.Errorf("%d groups with %d levels, want many groups of several levels", len(groupOf), len(levels))
	}
	for _, m := range collect(t, cfg) {
		if e, err := schemas.DecodeCRM(m.Value); err == nil && e.Type == schemas.CRMProfile && e.Profile.Tier != nil && profiles[e.MSISDN] != string(m.Value) {
			t.Fatalf("the profile of %s differs between two runs", e.MSISDN)
		}
	}
}
