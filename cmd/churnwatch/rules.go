package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/signals"
)

// ruleView is one signal of `churnwatch rules`, with the thresholds in
// effect under their configuration names.
type ruleView struct {
	Code       string         `json:"code"`
	NameZH     string         `json:"name_zh"`
	NameEN     string         `json:"name_en"`
	Kind       string         `json:"kind"`
	Severity   string         `json:"severity"`
	FiresWhen  string         `json:"fires_when"`
	Config     string         `json:"config,omitempty"` // where the thresholds live in the YAML file
	Thresholds map[string]any `json:"thresholds"`
	order      []string       // of Thresholds, for the text form
}

// rulesView is the whole effective rule set.
type rulesView struct {
	// RuleVersion is the content hash every warning records.
	RuleVersion        string     `json:"rule_version"`
	RulesFile          string     `json:"rules_file,omitempty"`
	Timezone           string     `json:"timezone"`
	DailySchedule      string     `json:"daily_schedule"`
	Lateness           string     `json:"lateness"`
	RealertAfter       string     `json:"realert_after"`
	HomeNetwork        string     `json:"home_network"`
	HotlineNumbers     []string   `json:"hotline_numbers"`
	CompetitorHotlines []string   `json:"competitor_hotlines"`
	Signals            []ruleView `json:"signals"`
}

// thresholdFields lists a thresholds struct's fields under their YAML names.
func thresholdFields(v any) (names []string, values map[string]any) {
	values = map[string]any{}
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("yaml"), ",")
		names = append(names, name)
		values[name] = rv.Field(i).Interface()
	}
	return names, values
}

func percent(x float64) string { return fmt.Sprintf("%g%%", x*100) }

// effectiveRules describes every signal of the catalogue with the
// thresholds of cfg.
func effectiveRules(cfg config.Config) rulesView {
	r, t := cfg.Rules, cfg.Rules.Thresholds
	view := rulesView{RuleVersion: r.Version(), RulesFile: cfg.RulesFile, Timezone: cfg.Timezone, DailySchedule: cfg.Daily.Schedule, Lateness: t.Lateness.String(),
		RealertAfter: t.RealertAfter.String(), HomeNetwork: r.HomeNetwork,
		HotlineNumbers: nonNil(r.HotlineNumbers), CompetitorHotlines: nonNil(r.CompetitorHotlines)}
	for _, info := range signals.Catalogue() {
		v := ruleView{Code: info.Code, NameZH: info.NameZH, NameEN: info.NameEN, Kind: string(info.Kind),
			Severity: string(info.Severity), Thresholds: map[string]any{}}
		var th any
		switch info.Code {
		case signals.HotlineCalls:
			x := t.HotlineCalls
			th, v.FiresWhen = x, fmt.Sprintf("≥ %d MO calls to %s within %d days; high at ≥ %d",
				x.Calls, strings.Join(r.HotlineNumbers, ", "), x.WindowDays, x.HighCalls)
			v.Severity = "medium/high"
		case signals.CompetitorHotline:
			x := t.CompetitorHotline
			th, v.FiresWhen = x, fmt.Sprintf("≥ %d MO calls to a competitor's hotline (%s) within %d days",
				x.Calls, strings.Join(r.CompetitorHotlines, ", "), x.WindowDays)
		case signals.ForwardOffnet:
			v.FiresWhen = fmt.Sprintf("a FWD record whose target is on another network than %s", r.HomeNetwork)
		case signals.OffnetShareRise:
			x := t.OffnetShareRise
			th, v.FiresWhen = x, fmt.Sprintf("off-net share of MO minutes over the last %d days ≥ %s and ≥ %g × the share over the %d days before",
				x.RecentDays, percent(x.MinShare), x.MinRatio, x.BaselineDays)
		case signals.UsageDropDaily:
			x := t.UsageDropDaily
			th, v.FiresWhen = x, fmt.Sprintf("average daily call minutes over the last %d days ≤ %s of the %d days before, with that baseline ≥ %g min/day",
				x.RecentDays, percent(x.MaxRatio), x.BaselineDays, x.MinBaselineMinutes)
		case signals.UsageDropPeriod:
			x := t.UsageDropPeriod
			th, v.FiresWhen = x, fmt.Sprintf("call minutes of the last %d days ≤ %s of the same %d days one year earlier (or, with no calls then, of the %d days before)",
				x.Days, percent(x.MaxRatio), x.Days, x.Days)
		case signals.PaymentFreqDrop:
			x := t.PaymentFreqDrop
			th, v.FiresWhen = x, fmt.Sprintf("payments in the last %d days ≤ %s of the %d days before, with ≥ %d payments before",
				x.Days, percent(x.MaxRatio), x.Days, x.MinBaselinePayments)
		case signals.SilentYesterday:
			x := t.SilentYesterday
			th, v.FiresWhen = x, fmt.Sprintf("no call at all on the evaluated day, for a subscriber averaging ≥ %g calls a day over the %d days before",
				x.MinAvgCalls, x.BaselineDays)
		case signals.SuspensionImminent:
			x := t.SuspensionImminent
			th, v.FiresWhen = x, fmt.Sprintf("an ARREARS event, a balance under %g yuan, or a balance the %d-day average daily spend exhausts within %d days",
				float64(x.MinBalanceFen)/100, x.SpendDays, x.DaysLeft)
		case signals.PromoExpiry:
			x := t.PromoExpiry
			th, v.FiresWhen = x, fmt.Sprintf("the profile's promo_end falls within the next %d days", x.DaysAhead)
		case signals.Birthday:
			x := t.Birthday
			th, v.FiresWhen = x, fmt.Sprintf("the birthday falls within the next %d days (29 February counts as 28 February in common years)", x.DaysAhead)
		default:
			v.FiresWhen = info.When
		}
		if th != nil {
			v.Config = "rules." + info.Code
			v.order, v.Thresholds = thresholdFields(th)
		}
		view.Signals = append(view.Signals, v)
	}
	return view
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// printRules prints the effective rule set, readable or as JSON.
func printRules(cfg config.Config, asJSON bool, w io.Writer) error {
	view := effectiveRules(cfg)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(view)
	}
	fmt.Fprintf(w, "Warning rules in effect (time zone %s; daily signals run on %q for the previous day)\n", view.Timezone, view.DailySchedule)
	from := "the configuration's rules: section and defaults"
	if view.RulesFile != "" {
		from = "rules file " + view.RulesFile
	}
	fmt.Fprintf(w, "rule version %s (from %s)\n", view.RuleVersion, from)
	fmt.Fprintf(w, "rules: home_network %s, hotline_numbers [%s], competitor_hotlines [%s], lateness %s, realert_after %s\n",
		view.HomeNetwork, strings.Join(view.HotlineNumbers, " "), strings.Join(view.CompetitorHotlines, " "), view.Lateness, view.RealertAfter)
	for _, v := range view.Signals {
		fmt.Fprintf(w, "\n%s  %s (%s)\n", v.Code, v.NameZH, v.NameEN)
		fmt.Fprintf(w, "  %s, severity %s\n", v.Kind, v.Severity)
		fmt.Fprintf(w, "  fires when: %s\n", v.FiresWhen)
		if v.Config != "" {
			var kv []string
			for _, k := range v.order {
				kv = append(kv, fmt.Sprintf("%s=%v", k, v.Thresholds[k]))
			}
			fmt.Fprintf(w, "  %s: %s\n", v.Config, strings.Join(kv, " "))
		}
	}
	return nil
}
