package schemas

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on event times: anything outside is a producer bug, and ClickHouse's
// DateTime cannot hold it anyway.
var (
	minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEventTime = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// MaxDurationS is the longest call a CDR may report: mediation splits longer
// calls into partial records.
const MaxDurationS = 86400

var (
	msisdnRe = regexp.MustCompile(`^1[0-9]{10}$`)
	numberRe = regexp.MustCompile(`^\+?[0-9]{1,32}$`)
	monthRe  = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)
)

// NormalizeMSISDN strips a +86 or 86 country prefix and checks that what is
// left is an 11-digit mainland mobile number starting with 1.
func NormalizeMSISDN(s string) (string, bool) {
	switch {
	case len(s) == 14 && strings.HasPrefix(s, "+86"):
		s = s[3:]
	case len(s) == 13 && strings.HasPrefix(s, "86"):
		s = s[2:]
	}
	return s, msisdnRe.MatchString(s)
}

// MaskMSISDN hides the middle digits of a subscriber number for logs:
// 13800000001 becomes 138****0001.
func MaskMSISDN(s string) string {
	if len(s) < 8 {
		return "****"
	}
	return s[:3] + "****" + s[len(s)-4:]
}

func unmarshal(data []byte, v any) error {
	if !utf8.Valid(data) {
		return &FieldError{Reason: "message is not valid UTF-8"}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jsonError(err)
	}
	return nil
}

func requireString(field string, p *string) (string, error) {
	if p == nil || *p == "" {
		return "", missing(field)
	}
	return *p, nil
}

func requireMSISDN(p *string) (string, error) {
	raw, err := requireString("msisdn", p)
	if err != nil {
		return "", err
	}
	m, ok := NormalizeMSISDN(raw)
	if !ok {
		return "", fieldErr("msisdn", "not an 11-digit mainland mobile number starting with 1 (optionally +86/86): %s", quote(raw))
	}
	return m, nil
}

func requireTime(field string, p *string) (time.Time, error) {
	raw, err := requireString(field, p)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return time.Time{}, fieldErr(field, "not an RFC 3339 time with offset (like 2026-11-22T10:00:00+08:00): %s", quote(raw))
	}
	if t.Before(minEventTime) || !t.Before(maxEventTime) {
		return time.Time{}, fieldErr(field, "time %s is outside the accepted range 2000-01-01 to 2099-12-31", quote(raw))
	}
	return t, nil
}

func checkNumber(field, s string) error {
	if !numberRe.MatchString(s) {
		return fieldErr(field, "not a phone number (digits with an optional leading +): %s", quote(s))
	}
	return nil
}

func checkDate(field string, p *string) error {
	if p == nil || *p == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, *p); err != nil {
		return fieldErr(field, "not a date YYYY-MM-DD: %s", quote(*p))
	}
	return nil
}

func oneOf[T ~string](field string, v T, allowed ...T) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fieldErr(field, "unknown value %s (allowed: %s)", quote(string(v)), strings.Join(names, ", "))
}

// rawCDR mirrors CDR with pointers so that absent and null fields can be told
// apart from zero values.
type rawCDR struct {
	EventID     *string `json:"event_id"`
	MSISDN      *string `json:"msisdn"`
	Peer        *string `json:"peer"`
	Direction   *string `json:"direction"`
	StartTime   *string `json:"start_time"`
	DurationS   *int64  `json:"duration_s"`
	PeerNetwork *string `json:"peer_network"`
	ForwardTo   *string `json:"forward_to"`
	CellID      *string `json:"cell_id"`
}

// DecodeCDR decodes and validates one cdr.voice message. The returned CDR has
// its MSISDN normalised; an error is a *FieldError.
func DecodeCDR(data []byte) (CDR, error) {
	var r rawCDR
	if err := unmarshal(data, &r); err != nil {
		return CDR{}, err
	}
	var c CDR
	var err error
	if c.EventID, err = requireString("event_id", r.EventID); err != nil {
		return CDR{}, err
	}
	if c.MSISDN, err = requireMSISDN(r.MSISDN); err != nil {
		return CDR{}, err
	}
	if c.Peer, err = requireString("peer", r.Peer); err != nil {
		return CDR{}, err
	}
	if err = checkNumber("peer", c.Peer); err != nil {
		return CDR{}, err
	}
	dir, err := requireString("direction", r.Direction)
	if err != nil {
		return CDR{}, err
	}
	c.Direction = Direction(dir)
	if err = oneOf("direction", c.Direction, DirectionMO, DirectionMT, DirectionFWD); err != nil {
		return CDR{}, err
	}
	if c.StartTime, err = requireTime("start_time", r.StartTime); err != nil {
		return CDR{}, err
	}
	if r.DurationS == nil {
		return CDR{}, missing("duration_s")
	}
	if c.DurationS = *r.DurationS; c.DurationS < 0 || c.DurationS > MaxDurationS {
		return CDR{}, fieldErr("duration_s", "must be between 0 and %d seconds, got %d", MaxDurationS, c.DurationS)
	}
	if r.PeerNetwork != nil && *r.PeerNetwork != "" {
		c.PeerNetwork = Network(*r.PeerNetwork)
		if err = oneOf("peer_network", c.PeerNetwork, Networks...); err != nil {
			return CDR{}, err
		}
	}
	if r.ForwardTo != nil {
		c.ForwardTo = *r.ForwardTo
	}
	switch {
	case c.Direction == DirectionFWD && c.ForwardTo == "":
		return CDR{}, fieldErr("forward_to", "required when direction is FWD")
	case c.ForwardTo != "":
		if err = checkNumber("forward_to", c.ForwardTo); err != nil {
			return CDR{}, err
		}
	}
	if r.CellID != nil {
		c.CellID = *r.CellID
	}
	return c, nil
}

type rawBilling struct {
	EventID    *string `json:"event_id"`
	MSISDN     *string `json:"msisdn"`
	Type       *string `json:"type"`
	TS         *string `json:"ts"`
	AmountFen  *int64  `json:"amount_fen"`
	BalanceFen *int64  `json:"balance_fen"`
	Channel    *string `json:"channel"`
	BillMonth  *string `json:"bill_month"`
}

// DecodeBilling decodes and validates one billing.events message.
func DecodeBilling(data []byte) (BillingEvent, error) {
	var r rawBilling
	if err := unmarshal(data, &r); err != nil {
		return BillingEvent{}, err
	}
	var b BillingEvent
	var err error
	if b.EventID, err = requireString("event_id", r.EventID); err != nil {
		return BillingEvent{}, err
	}
	if b.MSISDN, err = requireMSISDN(r.MSISDN); err != nil {
		return BillingEvent{}, err
	}
	typ, err := requireString("type", r.Type)
	if err != nil {
		return BillingEvent{}, err
	}
	b.Type = BillingType(typ)
	if err = oneOf("type", b.Type, BillingPayment, BillingBill, BillingBalance, BillingArrears); err != nil {
		return BillingEvent{}, err
	}
	if b.TS, err = requireTime("ts", r.TS); err != nil {
		return BillingEvent{}, err
	}
	b.AmountFen, b.BalanceFen = r.AmountFen, r.BalanceFen
	if r.Channel != nil {
		b.Channel = *r.Channel
	}
	if r.BillMonth != nil {
		b.BillMonth = *r.BillMonth
	}
	switch b.Type {
	case BillingPayment, BillingBill, BillingArrears:
		if b.AmountFen == nil {
			return BillingEvent{}, fieldErr("amount_fen", "required for type %s", b.Type)
		}
		if *b.AmountFen < 0 {
			return BillingEvent{}, fieldErr("amount_fen", "must not be negative for type %s, got %d", b.Type, *b.AmountFen)
		}
	case BillingBalance:
		if b.BalanceFen == nil {
			return BillingEvent{}, fieldErr("balance_fen", "required for type BALANCE")
		}
	}
	if b.Type == BillingBill && b.BillMonth == "" {
		return BillingEvent{}, fieldErr("bill_month", "required for type BILL")
	}
	if b.BillMonth != "" && !monthRe.MatchString(b.BillMonth) {
		return BillingEvent{}, fieldErr("bill_month", "not a month YYYY-MM: %s", quote(b.BillMonth))
	}
	return b, nil
}

type rawCRM struct {
	EventID *string  `json:"event_id"`
	MSISDN  *string  `json:"msisdn"`
	Type    *string  `json:"type"`
	TS      *string  `json:"ts"`
	Profile *Profile `json:"profile"`
}

// DecodeCRM decodes and validates one crm.events message.
func DecodeCRM(data []byte) (CRMEvent, error) {
	var r rawCRM
	if err := unmarshal(data, &r); err != nil {
		return CRMEvent{}, err
	}
	var e CRMEvent
	var err error
	if e.EventID, err = requireString("event_id", r.EventID); err != nil {
		return CRMEvent{}, err
	}
	if e.MSISDN, err = requireMSISDN(r.MSISDN); err != nil {
		return CRMEvent{}, err
	}
	typ, err := requireString("type", r.Type)
	if err != nil {
		return CRMEvent{}, err
	}
	e.Type = CRMType(typ)
	if err = oneOf("type", e.Type, CRMProfile, CRMPortOutQuery, CRMPreCancel, CRMLossReport,
		CRMSuspendRequest, CRMDeactivate, CRMReactivate); err != nil {
		return CRMEvent{}, err
	}
	if e.TS, err = requireTime("ts", r.TS); err != nil {
		return CRMEvent{}, err
	}
	if e.Type == CRMProfile && r.Profile == nil {
		return CRMEvent{}, fieldErr("profile", "required for type PROFILE")
	}
	if p := r.Profile; p != nil {
		if p.Tier != nil && *p.Tier != "" {
			if err = oneOf("profile.tier", *p.Tier, Tiers...); err != nil {
				return CRMEvent{}, err
			}
		}
		for _, d := range []struct {
			field string
			value *string
		}{{"profile.birthday", p.Birthday}, {"profile.promo_end", p.PromoEnd}, {"profile.join_date", p.JoinDate}} {
			if err = checkDate(d.field, d.value); err != nil {
				return CRMEvent{}, err
			}
		}
		e.Profile = p
	}
	return e, nil
}

type rawTaskUpdate struct {
	TaskID *string `json:"task_id"`
	MSISDN *string `json:"msisdn"`
	Status *string `json:"status"`
	By     *string `json:"by"`
	To     *string `json:"to"`
	Note   *string `json:"note"`
	TS     *string `json:"ts"`
}

// DecodeTaskUpdate decodes and validates one churn.task-updates message.
func DecodeTaskUpdate(data []byte) (TaskUpdate, error) {
	var r rawTaskUpdate
	if err := unmarshal(data, &r); err != nil {
		return TaskUpdate{}, err
	}
	var u TaskUpdate
	var err error
	if u.TaskID, err = requireString("task_id", r.TaskID); err != nil {
		return TaskUpdate{}, err
	}
	if u.MSISDN, err = requireMSISDN(r.MSISDN); err != nil {
		return TaskUpdate{}, err
	}
	st, err := requireString("status", r.Status)
	if err != nil {
		return TaskUpdate{}, err
	}
	u.Status = TaskUpdateStatus(st)
	if err = oneOf("status", u.Status, UpdateAccepted, UpdateContacted, UpdateTransferred,
		UpdateRetained, UpdateLost, UpdateClosed); err != nil {
		return TaskUpdate{}, err
	}
	if u.TS, err = requireTime("ts", r.TS); err != nil {
		return TaskUpdate{}, err
	}
	for _, f := range []struct {
		dst *string
		src *string
	}{{&u.By, r.By}, {&u.To, r.To}, {&u.Note, r.Note}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if u.Status == UpdateTransferred && u.To == "" {
		return TaskUpdate{}, fieldErr("to", "required for status TRANSFERRED (the new assignee)")
	}
	return u, nil
}
