package signals

import (
	"errors"
	"fmt"
	"time"
)

// Thresholds are every tunable number of the catalogue. Zero values are not
// defaults: start from DefaultThresholds and override.
type Thresholds struct {
	// Lateness: an event older than this behind the highest event time
	// seen on its partition becomes a fact but fires no real-time warning.
	Lateness time.Duration `yaml:"lateness"`
	// RealertAfter: a real-time signal of the same severity fires at most
	// once per subscriber within this much event time.
	RealertAfter time.Duration `yaml:"realert_after"`

	HotlineCalls       HotlineThresholds     `yaml:"hotline_calls"`
	CompetitorHotline  CompetitorThresholds  `yaml:"competitor_hotline"`
	OffnetShareRise    OffnetShareThresholds `yaml:"offnet_share_rise"`
	UsageDropDaily     UsageDropThresholds   `yaml:"usage_drop_daily"`
	UsageDropPeriod    PeriodDropThresholds  `yaml:"usage_drop_period"`
	PaymentFreqDrop    PaymentThresholds     `yaml:"payment_freq_drop"`
	SilentYesterday    SilentThresholds      `yaml:"silent_yesterday"`
	SuspensionImminent SuspensionThresholds  `yaml:"suspension_imminent"`
	PromoExpiry        AheadThresholds       `yaml:"promo_expiry"`
	Birthday           AheadThresholds       `yaml:"birthday"`
}

// HotlineThresholds tune hotline_calls.
type HotlineThresholds struct {
	Calls      int `yaml:"calls"`      // medium at this many calls in the window
	HighCalls  int `yaml:"high_calls"` // high at this many
	WindowDays int `yaml:"window_days"`
}

// CompetitorThresholds tune competitor_hotline.
type CompetitorThresholds struct {
	Calls      int `yaml:"calls"`
	WindowDays int `yaml:"window_days"`
}

// OffnetShareThresholds tune offnet_share_rise.
type OffnetShareThresholds struct {
	MinShare     float64 `yaml:"min_share"`
	MinRatio     float64 `yaml:"min_ratio"`
	RecentDays   int     `yaml:"recent_days"`
	BaselineDays int     `yaml:"baseline_days"`
	// MinRecentMinutes is the least MO minutes over the recent days for the
	// share to count: the weekly share of a subscriber who calls little
	// swings widely. 0 (the SPEC default) means no minimum.
	MinRecentMinutes float64 `yaml:"min_recent_mo_minutes"`
}

// UsageDropThresholds tune usage_drop_daily.
type UsageDropThresholds struct {
	MaxRatio           float64 `yaml:"max_ratio"`
	RecentDays         int     `yaml:"recent_days"`
	BaselineDays       int     `yaml:"baseline_days"`
	MinBaselineMinutes float64 `yaml:"min_baseline_minutes_per_day"`
}

// PeriodDropThresholds tune usage_drop_period.
type PeriodDropThresholds struct {
	MaxRatio float64 `yaml:"max_ratio"`
	Days     int     `yaml:"days"`
}

// PaymentThresholds tune payment_freq_drop.
type PaymentThresholds struct {
	MaxRatio            float64 `yaml:"max_ratio"`
	Days                int     `yaml:"days"`
	MinBaselinePayments int     `yaml:"min_baseline_payments"`
}

// SilentThresholds tune silent_yesterday.
type SilentThresholds struct {
	MinAvgCalls  float64 `yaml:"min_avg_calls"`
	BaselineDays int     `yaml:"baseline_days"`
}

// SuspensionThresholds tune suspension_imminent.
type SuspensionThresholds struct {
	MinBalanceFen int64 `yaml:"min_balance_fen"` // a balance under this fires
	DaysLeft      int   `yaml:"days_left"`       // or one the average daily spend exhausts within this
	SpendDays     int   `yaml:"spend_days"`      // the spend average is over this many days
}

// AheadThresholds tune promo_expiry and birthday.
type AheadThresholds struct {
	DaysAhead int `yaml:"days_ahead"`
}

// DefaultThresholds returns the SPEC section 4 defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		Lateness:           48 * time.Hour,
		RealertAfter:       7 * 24 * time.Hour,
		HotlineCalls:       HotlineThresholds{Calls: 3, HighCalls: 5, WindowDays: 7},
		CompetitorHotline:  CompetitorThresholds{Calls: 1, WindowDays: 7},
		OffnetShareRise:    OffnetShareThresholds{MinShare: 0.4, MinRatio: 1.5, RecentDays: 7, BaselineDays: 28},
		UsageDropDaily:     UsageDropThresholds{MaxRatio: 0.5, RecentDays: 7, BaselineDays: 28, MinBaselineMinutes: 10},
		UsageDropPeriod:    PeriodDropThresholds{MaxRatio: 0.5, Days: 30},
		PaymentFreqDrop:    PaymentThresholds{MaxRatio: 0.5, Days: 90, MinBaselinePayments: 2},
		SilentYesterday:    SilentThresholds{MinAvgCalls: 3, BaselineDays: 28},
		SuspensionImminent: SuspensionThresholds{MinBalanceFen: 500, DaysLeft: 3, SpendDays: 30},
		PromoExpiry:        AheadThresholds{DaysAhead: 30},
		Birthday:           AheadThresholds{DaysAhead: 3},
	}
}

// Validate says which threshold makes no sense.
func (t Thresholds) Validate() error {
	var errs []error
	positive := func(name string, v float64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("rules.%s must be positive, got %v", name, v))
		}
	}
	ratio := func(name string, v float64) {
		if v <= 0 || v > 1 {
			errs = append(errs, fmt.Errorf("rules.%s must be in (0, 1], got %v", name, v))
		}
	}
	positive("lateness", t.Lateness.Hours())
	positive("realert_after", t.RealertAfter.Hours())
	positive("hotline_calls.calls", float64(t.HotlineCalls.Calls))
	if t.HotlineCalls.HighCalls < t.HotlineCalls.Calls {
		errs = append(errs, fmt.Errorf("rules.hotline_calls.high_calls (%d) must be ≥ calls (%d)", t.HotlineCalls.HighCalls, t.HotlineCalls.Calls))
	}
	positive("hotline_calls.window_days", float64(t.HotlineCalls.WindowDays))
	positive("competitor_hotline.calls", float64(t.CompetitorHotline.Calls))
	positive("competitor_hotline.window_days", float64(t.CompetitorHotline.WindowDays))
	ratio("offnet_share_rise.min_share", t.OffnetShareRise.MinShare)
	positive("offnet_share_rise.min_ratio", t.OffnetShareRise.MinRatio)
	positive("offnet_share_rise.recent_days", float64(t.OffnetShareRise.RecentDays))
	positive("offnet_share_rise.baseline_days", float64(t.OffnetShareRise.BaselineDays))
	if t.OffnetShareRise.MinRecentMinutes < 0 {
		errs = append(errs, fmt.Errorf("rules.offnet_share_rise.min_recent_mo_minutes must be 0 (no minimum) or more, got %v", t.OffnetShareRise.MinRecentMinutes))
	}
	ratio("usage_drop_daily.max_ratio", t.UsageDropDaily.MaxRatio)
	positive("usage_drop_daily.recent_days", float64(t.UsageDropDaily.RecentDays))
	positive("usage_drop_daily.baseline_days", float64(t.UsageDropDaily.BaselineDays))
	ratio("usage_drop_period.max_ratio", t.UsageDropPeriod.MaxRatio)
	positive("usage_drop_period.days", float64(t.UsageDropPeriod.Days))
	ratio("payment_freq_drop.max_ratio", t.PaymentFreqDrop.MaxRatio)
	positive("payment_freq_drop.days", float64(t.PaymentFreqDrop.Days))
	positive("silent_yesterday.min_avg_calls", t.SilentYesterday.MinAvgCalls)
	positive("silent_yesterday.baseline_days", float64(t.SilentYesterday.BaselineDays))
	positive("suspension_imminent.days_left", float64(t.SuspensionImminent.DaysLeft))
	positive("suspension_imminent.spend_days", float64(t.SuspensionImminent.SpendDays))
	positive("promo_expiry.days_ahead", float64(t.PromoExpiry.DaysAhead))
	positive("birthday.days_ahead", float64(t.Birthday.DaysAhead))
	return errors.Join(errs...)
}
