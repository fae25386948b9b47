package schemas

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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

// Longest accepted strings, in characters. A message within the consumer's
// size limit could still carry an identifier tens of kilobytes long, which
// would land in ClickHouse sorting keys; nothing legitimate comes close.
const (
	MaxIDLength   = 256  // identifiers and short labels (event_id, cell_id, region, ...)
	MaxNoteLength = 4096 // free text (a task update's note)
)

// NormalizeMSISDN strips a +86 or 86 country prefix and checks that what is
// left is an 11-digit mainland mobile number starting with 1.
func NormalizeMSISDN(s string) (string, bool) {
	switch {
	case len(s) == 14 && s[:3] == "+86":
		s = s[3:]
	case len(s) == 13 && s[:2] == "86":
		s = s[2:]
	}
	return s, len(s) == 11 && s[0] == '1' && allDigits(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MaskMSISDN hides the middle digits of a subscriber number for logs:
// 13800000001 becomes 138****0001.
func MaskMSISDN(s string) string {
	if len(s) < 8 {
		return "****"
	}
	return s[:3] + "****" + s[len(s)-4:]
}

// unmarshal decodes one message into v, a raw* struct. The JSON layer
// rejects duplicate keys (encoding/json would silently keep the last one, so
// a message could mean two things), invalid UTF-8, lone surrogates and
// trailing data.
func unmarshal(data []byte, v json.UnmarshalerFrom) error {
	var target any = v
	if i := firstNonSpace(data); i == len(data) {
		return &FieldError{Reason: "message is empty"}
	} else if data[i] != '{' {
		// Say what it is when it is valid JSON but not an object (null would
		// otherwise decode into an empty struct).
		if val := jsontext.Value(data); val.IsValid() {
			return &FieldError{Reason: "message must be a JSON object, got " + kindName(val.Kind())}
		}
		// Not JSON at all: the raw structs bind objects only, so let the
		// JSON layer's struct decoder say what is wrong, as it always has.
		target = new(struct{})
	}
	if !utf8.Valid(data) {
		return &FieldError{Reason: fmt.Sprintf("message is not valid UTF-8 (first bad byte at offset %d)", invalidUTF8At(data))}
	}
	if err := json.Unmarshal(data, target); err != nil {
		return jsonError(err)
	}
	return nil
}

func firstNonSpace(data []byte) int {
	for i, c := range data {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return len(data)
}

func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// checkLength refuses a string longer than max characters. Counting runes
// only happens for strings longer than max bytes, so short values cost one
// comparison.
func checkLength(field, s string, max int) error {
	if len(s) > max && utf8.RuneCountInString(s) > max {
		return fieldErr(field, "longer than %d characters (%d bytes): %s", max, len(s), quote(s))
	}
	return nil
}

func requireString(field string, s optString) (string, error) {
	if !s.Set || s.V == "" {
		return "", missing(field)
	}
	return s.V, checkLength(field, s.V, MaxIDLength)
}

// optionalString returns the value of an optional string field, "" when it
// is absent or null.
func optionalString(field string, s optString, max int) (string, error) {
	if !s.Set {
		return "", nil
	}
	return s.V, checkLength(field, s.V, max)
}

func requireMSISDN(s optString) (string, error) {
	if !s.Set || s.V == "" {
		return "", missing("msisdn")
	}
	m, ok := NormalizeMSISDN(s.V)
	if !ok {
		return "", fieldErr("msisdn", "not an 11-digit mainland mobile number starting with 1 (optionally +86/86): %s", quote(s.V))
	}
	return m, nil
}

func requireTime(field string, s optString) (time.Time, error) {
	if !s.Set || s.V == "" {
		return time.Time{}, missing(field)
	}
	raw := s.V
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil || !validOffset(raw) {
		return time.Time{}, fieldErr(field, "not an RFC 3339 time with offset (like 2026-11-22T10:00:00+08:00): %s", quote(raw))
	}
	switch {
	case t.Before(minEventTime):
		return time.Time{}, fieldErr(field, "time %s is before 2000-01-01T00:00:00Z, the earliest accepted", quote(raw))
	case !t.Before(maxEventTime):
		return time.Time{}, fieldErr(field, "time %s is after 2099-12-31T23:59:59Z, the latest accepted", quote(raw))
	}
	return t, nil
}

// validOffset checks the numeric offset that time.Parse accepted: it takes
// offsets such as +24:00 and +08:60, which RFC 3339 forbids and which
// time.Time's own JSON encoding then refuses to write (a real-time warning
// carrying such an event's time could never be published, and its batch
// would be retried forever).
func validOffset(raw string) bool {
	if raw[len(raw)-1] == 'Z' {
		return true
	}
	if len(raw) < 6 {
		return false
	}
	off := raw[len(raw)-6:] // ±hh:mm, already checked by time.Parse
	return off[1] <= '2' && (off[1] < '2' || off[2] <= '3') && off[4] <= '5'
}

// checkNumber accepts digits with an optional leading +, at most 32 digits.
func checkNumber(field, s string) error {
	digits := s
	if len(digits) > 0 && digits[0] == '+' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 32 || !allDigits(digits) {
		return fieldErr(field, "not a phone number (digits with an optional leading +): %s", quote(s))
	}
	return nil
}

// validMonth reports whether s is YYYY-MM with a month 01-12.
func validMonth(s string) bool {
	return len(s) == 7 && allDigits(s[:4]) && s[4] == '-' &&
		((s[5] == '0' && s[6] >= '1' && s[6] <= '9') || (s[5] == '1' && s[6] >= '0' && s[6] <= '2'))
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

// rawCDR mirrors CDR with optional values so that absent and null fields can
// be told apart from zero values.
type rawCDR struct {
	EventID, MSISDN, Peer, Direction, StartTime optString
	DurationS                                   optInt
	PeerNetwork, ForwardTo, CellID              optString
	strs                                        stringArena
}

// members says where each member of a cdr.voice message goes.
func (r *rawCDR) members() []member {
	return []member{
		{"event_id", &r.EventID},
		{"msisdn", &r.MSISDN},
		{"peer", &r.Peer},
		{"direction", &r.Direction},
		{"start_time", &r.StartTime},
		{"duration_s", &r.DurationS},
		{"peer_network", &r.PeerNetwork},
		{"forward_to", &r.ForwardTo},
		{"cell_id", &r.CellID},
	}
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (r *rawCDR) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return decodeObject(dec, &r.strs, r.members())
}

var cdrPool rawPool[rawCDR]

// DecodeCDR decodes and validates one cdr.voice message. The returned CDR has
// its MSISDN normalised; an error is a *FieldError.
//
// A canonical message (see scanCanonical) is bound without the JSON layer.
// Any other message, and any message refused, is decoded by the full path,
// so every refusal is the full path's.
func DecodeCDR(data []byte) (CDR, error) {
	var fast rawCDR
	if fast.scan(data) {
		if c, err := fast.validate(); err == nil {
			return c, nil
		}
	}
	r := cdrPool.get()
	defer cdrPool.put(r)
	return r.decode(data)
}

// scan is the fast path of DecodeCDR: it binds a canonical message into r, a
// zero rawCDR.
func (r *rawCDR) scan(data []byte) bool { return scanCanonical(data, r.members()) }

// decode is the full path of DecodeCDR: the JSON layer and decodeObject.
func (r *rawCDR) decode(data []byte) (CDR, error) {
	*r = rawCDR{strs: r.strs.reset()}
	if err := unmarshal(data, r); err != nil {
		return CDR{}, err
	}
	return r.validate()
}

// validate checks the members bound from a cdr.voice message and builds the
// CDR; both paths of DecodeCDR end here.
func (r *rawCDR) validate() (CDR, error) {
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
	if !r.DurationS.Set {
		return CDR{}, missing("duration_s")
	}
	if c.DurationS = r.DurationS.V; c.DurationS < 0 || c.DurationS > MaxDurationS {
		return CDR{}, fieldErr("duration_s", "must be between 0 and %d seconds, got %d", MaxDurationS, c.DurationS)
	}
	if r.PeerNetwork.Set && r.PeerNetwork.V != "" {
		c.PeerNetwork = Network(r.PeerNetwork.V)
		if err = oneOf("peer_network", c.PeerNetwork, Networks...); err != nil {
			return CDR{}, err
		}
	}
	if c.ForwardTo, err = optionalString("forward_to", r.ForwardTo, MaxIDLength); err != nil {
		return CDR{}, err
	}
	switch {
	case c.Direction == DirectionFWD && c.ForwardTo == "":
		return CDR{}, fieldErr("forward_to", "required when direction is FWD")
	case c.ForwardTo != "":
		if err = checkNumber("forward_to", c.ForwardTo); err != nil {
			return CDR{}, err
		}
	}
	if c.CellID, err = optionalString("cell_id", r.CellID, MaxIDLength); err != nil {
		return CDR{}, err
	}
	return c, nil
}

type rawBilling struct {
	EventID, MSISDN, Type, TS optString
	AmountFen, BalanceFen     optInt
	Channel, BillMonth        optString
	strs                      stringArena
}

// members says where each member of a billing.events message goes.
func (r *rawBilling) members() []member {
	return []member{
		{"event_id", &r.EventID},
		{"msisdn", &r.MSISDN},
		{"type", &r.Type},
		{"ts", &r.TS},
		{"amount_fen", &r.AmountFen},
		{"balance_fen", &r.BalanceFen},
		{"channel", &r.Channel},
		{"bill_month", &r.BillMonth},
	}
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (r *rawBilling) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return decodeObject(dec, &r.strs, r.members())
}

var billingPool rawPool[rawBilling]

// DecodeBilling decodes and validates one billing.events message, by the
// fast path when it is canonical, as DecodeCDR does.
func DecodeBilling(data []byte) (BillingEvent, error) {
	var fast rawBilling
	if fast.scan(data) {
		if b, err := fast.validate(); err == nil {
			return b, nil
		}
	}
	r := billingPool.get()
	defer billingPool.put(r)
	return r.decode(data)
}

// scan is the fast path of DecodeBilling: it binds a canonical message into
// r, a zero rawBilling.
func (r *rawBilling) scan(data []byte) bool { return scanCanonical(data, r.members()) }

// decode is the full path of DecodeBilling: the JSON layer and decodeObject.
func (r *rawBilling) decode(data []byte) (BillingEvent, error) {
	*r = rawBilling{strs: r.strs.reset()}
	if err := unmarshal(data, r); err != nil {
		return BillingEvent{}, err
	}
	return r.validate()
}

// validate checks the members bound from a billing.events message and
// builds the event; both paths of DecodeBilling end here.
func (r *rawBilling) validate() (BillingEvent, error) {
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
	b.AmountFen, b.BalanceFen = r.AmountFen.ptr(), r.BalanceFen.ptr()
	if b.Channel, err = optionalString("channel", r.Channel, MaxIDLength); err != nil {
		return BillingEvent{}, err
	}
	b.BillMonth = r.BillMonth.V
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
	if b.BillMonth != "" && !validMonth(b.BillMonth) {
		return BillingEvent{}, fieldErr("bill_month", "not a month YYYY-MM: %s", quote(b.BillMonth))
	}
	return b, nil
}

// rawCRM leaves the profile, a struct of pointers in CRMEvent too, to the
// JSON layer.
type rawCRM struct {
	EventID, MSISDN, Type, TS optString
	Profile                   *Profile
	strs                      stringArena
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (r *rawCRM) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return decodeObject(dec, &r.strs, []member{
		{"event_id", &r.EventID},
		{"msisdn", &r.MSISDN},
		{"type", &r.Type},
		{"ts", &r.TS},
		{"profile", &r.Profile},
	})
}

var crmPool rawPool[rawCRM]

// DecodeCRM decodes and validates one crm.events message.
func DecodeCRM(data []byte) (CRMEvent, error) {
	r := crmPool.get()
	defer crmPool.put(r)
	*r = rawCRM{strs: r.strs.reset()}
	if err := unmarshal(data, r); err != nil {
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
		for _, d := range [...]struct {
			field string
			value *string
		}{{"profile.birthday", p.Birthday}, {"profile.promo_end", p.PromoEnd}, {"profile.join_date", p.JoinDate}} {
			if err = checkDate(d.field, d.value); err != nil {
				return CRMEvent{}, err
			}
		}
		for _, f := range [...]struct {
			field string
			value *string
		}{{"profile.name", p.Name}, {"profile.region", p.Region}, {"profile.account_manager", p.AccountManager},
			{"profile.phone_manager", p.PhoneManager}, {"profile.status", p.Status}} {
			if f.value == nil {
				continue
			}
			if err = checkLength(f.field, *f.value, MaxIDLength); err != nil {
				return CRMEvent{}, err
			}
		}
		if err = checkProfileExtensions(p); err != nil {
			return CRMEvent{}, err
		}
		e.Profile = p
	}
	return e, nil
}

// checkProfileExtensions validates the fields of the workbench profile
// (interests, group, products, network_age_months). Each is optional; a
// list is at most MaxListItems labels, each a non-empty label of at most
// MaxIDLength characters.
func checkProfileExtensions(p *Profile) error {
	for _, l := range [...]struct {
		field string
		items *[]string
	}{{"profile.interests", p.Interests}, {"profile.products", p.Products}} {
		if l.items == nil {
			continue
		}
		if len(*l.items) > MaxListItems {
			return fieldErr(l.field, "at most %d items, got %d", MaxListItems, len(*l.items))
		}
		for i, it := range *l.items {
			item := fmt.Sprintf("%s.%d", l.field, i)
			if it == "" {
				return fieldErr(item, "empty string (leave it out of the list)")
			}
			if err := checkLength(item, it, MaxIDLength); err != nil {
				return err
			}
		}
	}
	if g := p.Group; g != nil {
		if err := checkLength("profile.group.id", g.ID, MaxIDLength); err != nil {
			return err
		}
		if err := checkLength("profile.group.name", g.Name, MaxIDLength); err != nil {
			return err
		}
		if g.Level != "" {
			if err := oneOf("profile.group.level", g.Level, GroupLevels...); err != nil {
				return err
			}
		}
		if g.Level != "" && g.ID == "" && g.Name == "" {
			return fieldErr("profile.group", "a level without the group's id or name")
		}
	}
	if n := p.NetworkAgeMonths; n != nil && (*n < 0 || *n > MaxNetworkAgeMonths) {
		return fieldErr("profile.network_age_months", "must be between 0 and %d months, got %d", MaxNetworkAgeMonths, *n)
	}
	return nil
}

type rawTaskUpdate struct {
	TaskID, MSISDN, Status, By, To, Note, TS optString
	strs                                     stringArena
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (r *rawTaskUpdate) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return decodeObject(dec, &r.strs, []member{
		{"task_id", &r.TaskID},
		{"msisdn", &r.MSISDN},
		{"status", &r.Status},
		{"by", &r.By},
		{"to", &r.To},
		{"note", &r.Note},
		{"ts", &r.TS},
	})
}

var taskUpdatePool rawPool[rawTaskUpdate]

// DecodeTaskUpdate decodes and validates one churn.task-updates message.
func DecodeTaskUpdate(data []byte) (TaskUpdate, error) {
	r := taskUpdatePool.get()
	defer taskUpdatePool.put(r)
	*r = rawTaskUpdate{strs: r.strs.reset()}
	if err := unmarshal(data, r); err != nil {
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
	if u.By, err = optionalString("by", r.By, MaxIDLength); err != nil {
		return TaskUpdate{}, err
	}
	if u.To, err = optionalString("to", r.To, MaxIDLength); err != nil {
		return TaskUpdate{}, err
	}
	if u.Note, err = optionalString("note", r.Note, MaxNoteLength); err != nil {
		return TaskUpdate{}, err
	}
	if u.Status == UpdateTransferred && u.To == "" {
		return TaskUpdate{}, fieldErr("to", "required for status TRANSFERRED (the new assignee)")
	}
	return u, nil
}
