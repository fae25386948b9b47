// Package signals is the warning catalogue of SPEC section 4: the thirteen
// signal codes with their Chinese and English names, kind and severity, the
// thresholds that make each fire (with the SPEC defaults), deterministic
// warning ids and the churn score. It evaluates nothing by itself: the
// real-time rules (package realtime) and the daily job (package daily) use it.
package signals

import "churnwatch/schemas"

// The signal codes: a public interface, never renamed.
const (
	HotlineCalls       = "hotline_calls"
	CompetitorHotline  = "competitor_hotline"
	ForwardOffnet      = "forward_offnet"
	OffnetShareRise    = "offnet_share_rise"
	UsageDropDaily     = "usage_drop_daily"
	UsageDropPeriod    = "usage_drop_period"
	PaymentFreqDrop    = "payment_freq_drop"
	SilentYesterday    = "silent_yesterday"
	SuspensionImminent = "suspension_imminent"
	PortOut            = "port_out"
	BusinessOp         = "business_op"
	PromoExpiry        = "promo_expiry"
	Birthday           = "birthday"
)

// Kind says when a signal is evaluated.
type Kind string

// The kinds of SPEC section 4.
const (
	RealTime Kind = "real time" // as soon as the completing event is consumed
	Daily    Kind = "daily"     // by the scheduler, for the previous local day
)

// Info describes one signal for people: managers read NameZH, ops NameEN.
type Info struct {
	Code     string
	NameZH   string
	NameEN   string
	Kind     Kind
	Severity schemas.Severity // the usual severity; hotline_calls may be high
	When     string           // when it fires, in words, with the default thresholds
}

// Catalogue returns the thirteen signals in SPEC order.
func Catalogue() []Info {
	return []Info{
		{HotlineCalls, "拨打10086次数", "calls to the service hotline", RealTime, schemas.SeverityMedium, "≥ 3 MO calls to a service hotline within 7 days; high at ≥ 5"},
		{CompetitorHotline, "拨打竞争对手客服", "calls to a competitor's hotline", RealTime, schemas.SeverityMedium, "≥ 1 MO call to a competitor's hotline within 7 days"},
		{ForwardOffnet, "呼转外网", "calls forwarded off-net", RealTime, schemas.SeverityHigh, "a FWD record whose target is on another operator's network"},
		{OffnetShareRise, "网间通话占比上升", "off-net call share rising", Daily, schemas.SeverityMedium, "off-net share of MO minutes over 7 days ≥ 40% and ≥ 1.5 × the 28 days before"},
		{UsageDropDaily, "通话日均下降", "daily call minutes dropping", Daily, schemas.SeverityMedium, "average daily minutes over 7 days ≤ 50% of the 28 days before, baseline ≥ 10 min/day"},
		{UsageDropPeriod, "通话与同期下降", "call minutes below last year", Daily, schemas.SeverityMedium, "minutes of the last 30 days ≤ 50% of the same 30 days a year earlier (else the 30 days before)"},
		{PaymentFreqDrop, "缴费频率下降", "fewer payments", Daily, schemas.SeverityLow, "payments in 90 days ≤ 50% of the 90 days before, with ≥ 2 before"},
		{SilentYesterday, "昨日无通话", "no calls yesterday", Daily, schemas.SeverityMedium, "no call yesterday, averaging ≥ 3 calls a day over the 28 days before"},
		{SuspensionImminent, "即将停机", "suspension imminent", RealTime, schemas.SeverityHigh, "an ARREARS event, a balance under 5 yuan, or a balance the 30-day spend exhausts within 3 days"},
		{PortOut, "离网预警", "port-out or deactivation", RealTime, schemas.SeverityCritical, "a PORT_OUT_QUERY or DEACTIVATE event"},
		{BusinessOp, "营业预销/挂失/报停", "pre-cancel, loss report or suspension request", RealTime, schemas.SeverityHigh, "a PRE_CANCEL, LOSS_REPORT or SUSPEND_REQUEST event"},
		{PromoExpiry, "活动到期", "promotion ending", Daily, schemas.SeverityLow, "the profile's promo_end falls within the next 30 days"},
		{Birthday, "生日关怀", "birthday (care occasion)", Daily, schemas.SeverityInfo, "the birthday falls within the next 3 days"},
	}
}

// Lookup returns the catalogue entry of a code.
func Lookup(code string) (Info, bool) {
	for _, i := range Catalogue() {
		if i.Code == code {
			return i, true
		}
	}
	return Info{}, false
}
