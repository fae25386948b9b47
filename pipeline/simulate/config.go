package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"churnwatch/schemas"
)

// Defaults used for the zero value of each Config field.
const (
	DefaultSubscribers = 1000
	DefaultSeed        = 1
	// DefaultDays covers the 28-day baseline plus the 7-day window that the
	// daily signals of SPEC section 4 compare.
	DefaultDays     = 35
	DefaultLocation = "Asia/Shanghai"
	DefaultManagers = 3
	// DefaultChurnShare is the share of subscribers who churn within the
	// window.
	DefaultChurnShare = 0.03
)

// NoChurn as Config.ChurnShare makes a population without churners (0
// means the default share).
const NoChurn = -1.0

// Limits that Validate enforces.
const (
	// MaxSubscribers bounds one run: a day of events for this many
	// subscribers is held in memory (about 8 bytes per call) while it is
	// sorted.
	MaxSubscribers = 10_000_000
	// MaxDays is ten years of history.
	MaxDays = 3660
	// MaxManagers is the most account (and phone) managers per region.
	MaxManagers = 100
	// MaxRegions is the most regions.
	MaxRegions = 1000
)

// Default topic names of SPEC section 2, used where Topics leaves a name
// empty.
const (
	DefaultCDRTopic     = "cdr.voice"
	DefaultBillingTopic = "billing.events"
	DefaultCRMTopic     = "crm.events"
)

// DefaultTierShares returns the default share of each value tier in the
// population (a fresh map each call).
func DefaultTierShares() map[schemas.Tier]float64 {
	return map[schemas.Tier]float64{
		schemas.TierDiamond:  0.02,
		schemas.TierGold:     0.08,
		schemas.TierSilver:   0.20,
		schemas.TierStandard: 0.70,
	}
}

// DefaultRegions returns the default regions: the districts and counties of
// Fuzhou, Jiangxi (a fresh slice each call).
func DefaultRegions() []string {
	return []string{
		"fuzhou-linchuan", "fuzhou-nancheng", "fuzhou-dongxiang", "fuzhou-nanfeng",
		"fuzhou-chongren", "fuzhou-lichuan",
	}
}

// Config describes one simulated population and the window of events it
// produces. The zero value of every field means its default; WithDefaults
// fills them in.
type Config struct {
	// Subscribers is the population size (default 1000).
	Subscribers int
	// Seed selects the population; the same seed gives the same messages.
	// Seed 0 means the default, 1.
	Seed int64
	// Days is how many days of history to generate (default 35).
	Days int
	// End is the exclusive end of the window: events cover
	// [End-Days, End). The default is today's local midnight in Location.
	End time.Time
	// Location is the time zone of the subscribers: it decides waking hours,
	// calendar days and the offset of every time in the messages (default
	// Asia/Shanghai, which is +08:00).
	Location *time.Location
	// TierShares is the share of each value tier; the shares must add up
	// to 1 (default diamond 0.02, gold 0.08, silver 0.20, standard 0.70).
	TierShares map[schemas.Tier]float64
	// Regions are the regions subscribers are spread over (default: the six
	// of DefaultRegions).
	Regions []string
	// Managers is the number of account managers per region, and of phone
	// managers likewise (default 3). Region r's account managers are
	// am-(r*Managers+1) to am-(r*Managers+Managers), phone managers pm-...
	Managers int
	// InvalidShare adds this many deliberately invalid messages per valid
	// one (default 0), for demonstrating the dead-letter topics: a bad
	// msisdn, an unknown enum value, a message that is not JSON, or a
	// missing required field.
	InvalidShare float64
	// ChurnShare is the share of subscribers who leave within the window
	// (default 0.03; NoChurn, or any negative value, for none). Each churner
	// has a persona (see Personas), a churn day in the later part of the
	// window on which it is deactivated, and the persona's behaviours from a
	// week to a month before; GroundTruth lists them.
	ChurnShare float64
	// Warmup is how many days at the start of the window are plain
	// history (default 0): no churner's behaviour starts, and none leaves,
	// before the window's day Warmup; churn days fall in the later three
	// fifths of the days after. An evaluation gives the signals' baselines
	// this history and scores the days after it.
	Warmup int
	// Rate is the target number of messages per second when producing;
	// 0 means as fast as the brokers accept them.
	Rate float64
}

// WithDefaults returns c with every zero field set to its default. now only
// serves the default End (today's local midnight); a Location that cannot be
// loaded (no time zone database) falls back to a fixed +08:00 zone, which is
// what Asia/Shanghai has been since 1991.
func (c Config) WithDefaults(now time.Time) Config {
	if c.Subscribers == 0 {
		c.Subscribers = DefaultSubscribers
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Days == 0 {
		c.Days = DefaultDays
	}
	if c.Location == nil {
		loc, err := time.LoadLocation(DefaultLocation)
		if err != nil {
			loc = time.FixedZone("CST", 8*3600)
		}
		c.Location = loc
	}
	if c.End.IsZero() {
		y, m, d := now.In(c.Location).Date()
		c.End = time.Date(y, m, d, 0, 0, 0, 0, c.Location)
	}
	if c.TierShares == nil {
		c.TierShares = DefaultTierShares()
	}
	if c.Regions == nil {
		c.Regions = DefaultRegions()
	}
	if c.Managers == 0 {
		c.Managers = DefaultManagers
	}
	if c.ChurnShare == 0 {
		c.ChurnShare = DefaultChurnShare
	}
	return c
}

// Validate reports every setting that is out of range, saying what to change.
// Zero fields are valid: they stand for their defaults. It does no I/O.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Subscribers < 0 || c.Subscribers > MaxSubscribers {
		bad("subscribers: must be between 1 and %d (0 means %d), got %d", MaxSubscribers, DefaultSubscribers, c.Subscribers)
	}
	if c.Days < 0 || c.Days > MaxDays {
		bad("days: must be between 1 and %d (0 means %d), got %d", MaxDays, DefaultDays, c.Days)
	}
	if !c.End.IsZero() {
		days := c.Days
		if days == 0 {
			days = DefaultDays
		}
		lo, hi := time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)
		if start := c.End.AddDate(0, 0, -days); start.Before(lo) || c.End.After(hi) {
			bad("end: the window %s to %s must lie between 2000-01-02 and 2099-12-31; set a later end or fewer days",
				start.Format(time.DateOnly), c.End.Format(time.DateOnly))
		}
	}
	if c.TierShares != nil {
		sum := 0.0
		for tier, share := range c.TierShares {
			if !slices.Contains(schemas.Tiers, tier) {
				bad("tier shares: unknown tier %q (use diamond, gold, silver, standard)", tier)
			}
			if share < 0 || math.IsNaN(share) || math.IsInf(share, 0) {
				bad("tier shares: share of %s must be a number between 0 and 1, got %v", tier, share)
			}
			sum += share
		}
		if math.Abs(sum-1) > 1e-3 {
			bad("tier shares: must add up to 1, they add up to %.4g", sum)
		}
	}
	if c.Regions != nil {
		if len(c.Regions) == 0 || len(c.Regions) > MaxRegions {
			bad("regions: give between 1 and %d region names (or none for the defaults), got %d", MaxRegions, len(c.Regions))
		}
		seen := make(map[string]bool, len(c.Regions))
		for _, r := range c.Regions {
			switch {
			case strings.TrimSpace(r) == "":
				bad("regions: a region name is empty")
			case seen[r]:
				bad("regions: %q is listed twice", r)
			}
			seen[r] = true
		}
	}
	if c.Managers < 0 || c.Managers > MaxManagers {
		bad("managers: must be between 1 and %d per region (0 means %d), got %d", MaxManagers, DefaultManagers, c.Managers)
	}
	if !(c.InvalidShare >= 0 && c.InvalidShare <= 1) {
		bad("invalid share: must be between 0 and 1 (0.01 adds one invalid message per hundred), got %v", c.InvalidShare)
	}
	if days := cmp.Or(c.Days, DefaultDays); c.Warmup < 0 || c.Warmup >= days {
		bad("warmup: must be at least 0 and fewer than the %d days of the window, got %d", days, c.Warmup)
	}
	if math.IsNaN(c.ChurnShare) || c.ChurnShare > 1 {
		bad("churn share: must be between 0 and 1 (0.03 makes three in a hundred subscribers churn; negative for none), got %v", c.ChurnShare)
	}
	if !(c.Rate >= 0) || math.IsInf(c.Rate, 0) {
		bad("rate: must be 0 (as fast as possible) or a positive number of messages per second, got %v", c.Rate)
	}
	return errors.Join(errs...)
}

// Topics names the topics the messages go to. An empty name means the
// default of SPEC section 2.
type Topics struct {
	CDR, Billing, CRM string
}

func (t Topics) withDefaults() Topics {
	if t.CDR == "" {
		t.CDR = DefaultCDRTopic
	}
	if t.Billing == "" {
		t.Billing = DefaultBillingTopic
	}
	if t.CRM == "" {
		t.CRM = DefaultCRMTopic
	}
	return t
}
