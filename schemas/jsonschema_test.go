package schemas_test

// These tests keep the published JSON Schema documents (schemas/jsonschema)
// and the Go decoders of this package in agreement: every message that one
// accepts the other must accept, and every message one rejects the other
// must reject. The Go decoders are the source of truth; where the two cannot
// agree (JSON Schema has no way to say it), the difference is listed in
// TestSchemaKnownDisagreements so that it is documented and noticed if it
// changes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"

	"churnwatch/schemas"
	"churnwatch/schemas/jsonschema"
)

var (
	inputTopics  = []string{"cdr.voice", "billing.events", "crm.events", "churn.task-updates"}
	outputTopics = []string{"churn.warnings", "churn.tasks"}
)

// signalCodes is the catalogue of SPEC section 4, in its order.
var signalCodes = []string{
	"hotline_calls", "competitor_hotline", "forward_offnet", "offnet_share_rise",
	"usage_drop_daily", "usage_drop_period", "payment_freq_drop", "silent_yesterday",
	"suspension_imminent", "port_out", "business_op", "promo_expiry", "birthday",
}

// decoder returns the Go validator of an input topic.
func decoder(topic string) func([]byte) error {
	switch topic {
	case "cdr.voice":
		return func(b []byte) error { _, err := schemas.DecodeCDR(b); return err }
	case "billing.events":
		return func(b []byte) error { _, err := schemas.DecodeBilling(b); return err }
	case "crm.events":
		return func(b []byte) error { _, err := schemas.DecodeCRM(b); return err }
	case "churn.task-updates":
		return func(b []byte) error { _, err := schemas.DecodeTaskUpdate(b); return err }
	}
	return nil
}

// schemaDoc is one compiled schema document.
type schemaDoc struct {
	topic    string
	url      string
	raw      map[string]any
	compiler *jsv.Compiler
	schema   *jsv.Schema
}

// loadSchema compiles the embedded schema of topic against the draft 2020-12
// meta-schema, with format assertion on (date-time and date are checked, not
// merely annotated). Nothing is loaded from the network.
func loadSchema(t *testing.T, topic string) *schemaDoc {
	t.Helper()
	data, err := jsonschema.Schema(topic)
	if err != nil {
		t.Fatalf("Schema(%q): %v", topic, err)
	}
	doc, err := jsv.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: not JSON: %v", topic, err)
	}
	raw, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("%s: schema is not an object", topic)
	}
	c := jsv.NewCompiler()
	c.DefaultDraft(jsv.Draft2020)
	c.AssertFormat()
	url := "mem:///" + jsonschema.FileName(topic)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatalf("%s: %v", topic, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s: does not compile: %v", topic, err)
	}
	return &schemaDoc{topic: topic, url: url, raw: raw, compiler: c, schema: sch}
}

func loadAll(t *testing.T) map[string]*schemaDoc {
	t.Helper()
	docs := map[string]*schemaDoc{}
	for _, topic := range append(slices.Clone(inputTopics), outputTopics...) {
		docs[topic] = loadSchema(t, topic)
	}
	return docs
}

// validate applies the schema to one message as a consumer would: the bytes
// must be one UTF-8 JSON text (RFC 8259 section 8.1) and the value must match.
func (d *schemaDoc) validate(msg []byte) error {
	if !utf8.Valid(msg) {
		return errors.New("not UTF-8")
	}
	v, err := jsv.UnmarshalJSON(bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return d.schema.Validate(v)
}

// verdicts runs both validators on msg.
func verdicts(d *schemaDoc, msg string) (schemaErr, goErr error) {
	return d.validate([]byte(msg)), decoder(d.topic)([]byte(msg))
}

func valid(err error) string {
	if err == nil {
		return "valid"
	}
	return "invalid"
}

// checkAgreement fails unless both validators reach want (true: valid).
func checkAgreement(t *testing.T, d *schemaDoc, msg string, want bool) {
	t.Helper()
	schemaErr, goErr := verdicts(d, msg)
	if (schemaErr == nil) != want {
		t.Errorf("schema says %s, want %s\nmessage: %s\nschema error: %v", valid(schemaErr), valid(errFor(want)), msg, schemaErr)
	}
	if (goErr == nil) != want {
		t.Errorf("Go decoder says %s, want %s\nmessage: %s\ndecoder error: %v", valid(goErr), valid(errFor(want)), msg, goErr)
	}
}

func errFor(ok bool) error {
	if ok {
		return nil
	}
	return errors.New("invalid")
}

// edit returns base with the top-level keys set to the given raw JSON values
// ("-" deletes the key). Raw values are kept verbatim (75.0 stays 75.0).
func edit(base string, kv ...string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		panic(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// Valid base messages. baseCDR, basePayment, basePortOut and baseUpdate carry
// only the required fields: agreementCases removes each in turn.
const (
	baseCDR     = `{"event_id":"e1","msisdn":"13800000001","peer":"10086","direction":"MO","start_time":"2026-11-22T10:00:00+08:00","duration_s":75}`
	basePayment = `{"event_id":"b1","msisdn":"13800000001","type":"PAYMENT","ts":"2026-11-22T09:00:00+08:00","amount_fen":10000}`
	baseBalance = `{"event_id":"b2","msisdn":"13800000001","type":"BALANCE","ts":"2026-11-22T09:00:00+08:00","balance_fen":15230}`
	baseBill    = `{"event_id":"b3","msisdn":"13800000001","type":"BILL","ts":"2026-11-01T02:00:00+08:00","amount_fen":38800,"bill_month":"2026-10"}`
	baseProfile = `{"event_id":"r1","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T08:00:00+08:00","profile":{"name":"张三","birthday":"1985-11-25","tier":"gold","promo_end":"2026-12-15","join_date":"2015-03-01"}}`
	basePortOut = `{"event_id":"r2","msisdn":"13800000001","type":"PORT_OUT_QUERY","ts":"2026-11-22T16:20:00+08:00"}`
	baseUpdate  = `{"task_id":"t1","msisdn":"13800000001","status":"CONTACTED","ts":"2026-11-23T15:00:00+08:00"}`
)

func withProfile(p string) string { return edit(baseProfile, "profile", p) }

type agreementCase struct {
	name  string
	topic string
	msg   string
	valid bool
}

// agreementCases are messages on which the schema and the Go decoder must
// reach the same, stated verdict.
func agreementCases() []agreementCase {
	var cs []agreementCase
	add := func(topic, name, msg string, ok bool) {
		cs = append(cs, agreementCase{name, topic, msg, ok})
	}
	// Input-independent shapes: every input topic rejects them.
	for _, topic := range inputTopics {
		add(topic, "not JSON", `{"event_id":`, false)
		add(topic, "JSON array", `[1,2]`, false)
		add(topic, "JSON null", `null`, false)
		add(topic, "JSON string", `"13800000001"`, false)
		add(topic, "empty object", `{}`, false)
		add(topic, "invalid UTF-8", "{\"event_id\":\"\xff\"}", false)
	}
	// A missing, null or empty required field is invalid.
	for topic, base := range map[string]string{
		"cdr.voice": baseCDR, "billing.events": basePayment,
		"crm.events": basePortOut, "churn.task-updates": baseUpdate,
	} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(base), &m); err != nil {
			panic(err)
		}
		add(topic, "base message", base, true)
		add(topic, "trailing garbage", base+"x", false)
		add(topic, "trailing whitespace", base+" \n", true)
		add(topic, "unknown extra fields", edit(base, "roaming", "true", "x_meta", `{"y":[1,null]}`), true)
		for key := range m {
			add(topic, "missing "+key, edit(base, key, "-"), false)
			add(topic, "null "+key, edit(base, key, "null"), false)
			if !bytes.HasPrefix(m[key], []byte(`"`)) {
				continue
			}
			add(topic, "empty "+key, edit(base, key, `""`), false)
			add(topic, key+" as number", edit(base, key, `12345`), false)
		}
		add(topic, "msisdn +86 prefix", edit(base, "msisdn", `"+8613800000001"`), true)
		add(topic, "msisdn 86 prefix", edit(base, "msisdn", `"8613800000001"`), true)
		add(topic, "msisdn 0086 prefix", edit(base, "msisdn", `"008613800000001"`), false)
		add(topic, "msisdn +1 prefix", edit(base, "msisdn", `"+13800000001"`), false)
		add(topic, "msisdn 10 digits", edit(base, "msisdn", `"1380000000"`), false)
		add(topic, "msisdn 12 digits", edit(base, "msisdn", `"138000000012"`), false)
		add(topic, "msisdn not starting with 1", edit(base, "msisdn", `"23800000001"`), false)
		add(topic, "msisdn landline", edit(base, "msisdn", `"059187654321"`), false)
		add(topic, "msisdn with spaces", edit(base, "msisdn", `"+86 13800000001"`), false)
		timeKey := "ts"
		if topic == "cdr.voice" {
			timeKey = "start_time"
		}
		for _, tc := range []struct {
			name, value string
			ok          bool
		}{
			{"UTC Z", `"2026-11-22T02:00:00Z"`, true},
			{"negative offset", `"2026-11-21T21:00:00-05:00"`, true},
			{"fractional seconds", `"2026-11-22T10:00:00.250+08:00"`, true},
			{"nanoseconds", `"2026-11-22T10:00:00.123456789+08:00"`, true},
			{"no offset", `"2026-11-22T10:00:00"`, false},
			{"space separator", `"2026-11-22 10:00:00+08:00"`, false},
			{"lower-case t", `"2026-11-22t10:00:00+08:00"`, false},
			{"lower-case z", `"2026-11-22T02:00:00z"`, false},
			{"no seconds", `"2026-11-22T10:00+08:00"`, false},
			{"date only", `"2026-11-22"`, false},
			{"February 30", `"2026-02-30T10:00:00+08:00"`, false},
			{"hour 24", `"2026-11-22T24:00:00+08:00"`, false},
			{"leap second", `"2026-12-31T23:59:60Z"`, false},
			{"year 1899", `"1899-11-22T10:00:00+08:00"`, false},
			{"year 2100", `"2100-01-01T12:00:00Z"`, false},
			{"offset hour 24", `"2026-11-22T09:00:00+24:00"`, false},
			{"offset minute 60", `"2026-11-22T09:00:00+08:60"`, false},
			{"first accepted instant", `"2000-01-01T00:00:00Z"`, true},
			{"unix seconds", `1763776800`, false},
		} {
			add(topic, timeKey+" "+tc.name, edit(base, timeKey, tc.value), tc.ok)
		}
	}

	// cdr.voice
	cdr := func(name, msg string, ok bool) { add("cdr.voice", name, msg, ok) }
	fwd := edit(baseCDR, "direction", `"FWD"`, "forward_to", `"13312345678"`)
	cdr("SPEC 2.1 example", `{"event_id":"c-000001","msisdn":"13800000001","peer":"10086","direction":"MO","start_time":"2026-11-22T10:00:00+08:00","duration_s":75,"peer_network":"CMCC","forward_to":"","cell_id":"460-00-1234-5678"}`, true)
	cdr("direction typo", edit(baseCDR, "direction", `"UP"`), false)
	cdr("direction lower case", edit(baseCDR, "direction", `"mo"`), false)
	cdr("direction with space", edit(baseCDR, "direction", `"MO "`), false)
	cdr("FWD with forward_to", fwd, true)
	cdr("FWD without forward_to", edit(fwd, "forward_to", "-"), false)
	cdr("FWD with empty forward_to", edit(fwd, "forward_to", `""`), false)
	cdr("FWD with null forward_to", edit(fwd, "forward_to", `null`), false)
	cdr("FWD to a foreign number", edit(fwd, "forward_to", `"+447700900123"`), true)
	cdr("FWD to a bad number", edit(fwd, "forward_to", `"133-1234"`), false)
	cdr("MO with empty forward_to", edit(baseCDR, "forward_to", `""`), true)
	cdr("MO with null forward_to", edit(baseCDR, "forward_to", `null`), true)
	cdr("MO with a forward_to number", edit(baseCDR, "forward_to", `"13312345678"`), true)
	cdr("MO with a bad forward_to", edit(baseCDR, "forward_to", `"13-3"`), false)
	cdr("forward_to as number", edit(baseCDR, "forward_to", `13312345678`), false)
	cdr("peer foreign with plus", edit(baseCDR, "peer", `"+447700900123"`), true)
	cdr("peer landline", edit(baseCDR, "peer", `"059187654321"`), true)
	cdr("peer 32 digits", edit(baseCDR, "peer", `"`+strings.Repeat("9", 32)+`"`), true)
	cdr("peer 33 digits", edit(baseCDR, "peer", `"`+strings.Repeat("9", 33)+`"`), false)
	cdr("peer with letters", edit(baseCDR, "peer", `"abc"`), false)
	cdr("peer with dash", edit(baseCDR, "peer", `"0591-8765"`), false)
	cdr("peer plus only", edit(baseCDR, "peer", `"+"`), false)
	cdr("duration zero", edit(baseCDR, "duration_s", `0`), true)
	cdr("duration 86400", edit(baseCDR, "duration_s", `86400`), true)
	cdr("duration 86401", edit(baseCDR, "duration_s", `86401`), false)
	cdr("duration negative", edit(baseCDR, "duration_s", `-1`), false)
	cdr("duration fractional", edit(baseCDR, "duration_s", `7.5`), false)
	cdr("duration fractional exponent", edit(baseCDR, "duration_s", `7.55e1`), false)
	cdr("duration as string", edit(baseCDR, "duration_s", `"75"`), false)
	cdr("duration boolean", edit(baseCDR, "duration_s", `true`), false)
	cdr("duration beyond int64", edit(baseCDR, "duration_s", `99999999999999999999`), false)
	cdr("peer_network empty", edit(baseCDR, "peer_network", `""`), true)
	cdr("peer_network null", edit(baseCDR, "peer_network", `null`), true)
	cdr("peer_network typo", edit(baseCDR, "peer_network", `"XXX"`), false)
	cdr("peer_network lower case", edit(baseCDR, "peer_network", `"cmcc"`), false)
	cdr("peer_network as number", edit(baseCDR, "peer_network", `1`), false)
	cdr("cell_id null", edit(baseCDR, "cell_id", `null`), true)
	cdr("cell_id as number", edit(baseCDR, "cell_id", `4600012345678`), false)
	cdr("duplicate key, the last one invalid", strings.Replace(baseCDR, `"direction":"MO"`, `"direction":"MO","direction":"UP"`, 1), false)
	cdr("field name in other case", edit(baseCDR, "event_id", "-", "EVENT_ID", `"e1"`), false)
	cdr("unknown field that differs only in case", edit(baseCDR, "Peer_Network", `5`), true)

	// billing.events
	bil := func(name, msg string, ok bool) { add("billing.events", name, msg, ok) }
	bil("SPEC 2.2 example", `{"event_id":"b-1","msisdn":"13800000001","type":"PAYMENT","ts":"2026-11-22T09:00:00+08:00","amount_fen":10000,"balance_fen":15230,"channel":"app","bill_month":""}`, true)
	bil("BILL", baseBill, true)
	bil("BALANCE", baseBalance, true)
	bil("ARREARS", edit(basePayment, "type", `"ARREARS"`), true)
	bil("type typo", edit(basePayment, "type", `"REFUND"`), false)
	bil("type lower case", edit(basePayment, "type", `"payment"`), false)
	bil("PAYMENT without amount_fen", edit(basePayment, "amount_fen", "-"), false)
	bil("PAYMENT with null amount_fen", edit(basePayment, "amount_fen", "null"), false)
	bil("PAYMENT of zero", edit(basePayment, "amount_fen", "0"), true)
	bil("PAYMENT negative", edit(basePayment, "amount_fen", "-1"), false)
	bil("PAYMENT fractional amount", edit(basePayment, "amount_fen", "100.5"), false)
	bil("PAYMENT amount as string", edit(basePayment, "amount_fen", `"10000"`), false)
	bil("PAYMENT amount int64 max", edit(basePayment, "amount_fen", "9223372036854775807"), true)
	bil("PAYMENT amount beyond int64", edit(basePayment, "amount_fen", "9223372036854775808"), false)
	bil("ARREARS without amount_fen", edit(basePayment, "type", `"ARREARS"`, "amount_fen", "-"), false)
	bil("ARREARS negative", edit(basePayment, "type", `"ARREARS"`, "amount_fen", "-5"), false)
	bil("BILL without amount_fen", edit(baseBill, "amount_fen", "-"), false)
	bil("BILL without bill_month", edit(baseBill, "bill_month", "-"), false)
	bil("BILL with empty bill_month", edit(baseBill, "bill_month", `""`), false)
	bil("BILL with null bill_month", edit(baseBill, "bill_month", `null`), false)
	bil("BILL month 13", edit(baseBill, "bill_month", `"2026-13"`), false)
	bil("BILL month one digit", edit(baseBill, "bill_month", `"2026-1"`), false)
	bil("BILL month with day", edit(baseBill, "bill_month", `"2026-10-01"`), false)
	bil("BILL month as number", edit(baseBill, "bill_month", `202610`), false)
	bil("PAYMENT with empty bill_month", edit(basePayment, "bill_month", `""`), true)
	bil("PAYMENT with null bill_month", edit(basePayment, "bill_month", `null`), true)
	bil("PAYMENT with a bill_month", edit(basePayment, "bill_month", `"2026-10"`), true)
	bil("PAYMENT with a bad bill_month", edit(basePayment, "bill_month", `"Oct"`), false)
	bil("BALANCE without balance_fen", edit(baseBalance, "balance_fen", "-"), false)
	bil("BALANCE with null balance_fen", edit(baseBalance, "balance_fen", "null"), false)
	bil("BALANCE negative", edit(baseBalance, "balance_fen", "-300"), true)
	bil("BALANCE fractional", edit(baseBalance, "balance_fen", "1.5"), false)
	bil("BALANCE with a negative amount_fen", edit(baseBalance, "amount_fen", "-1"), true)
	bil("BALANCE with null amount_fen", edit(baseBalance, "amount_fen", "null"), true)
	bil("PAYMENT with null balance_fen", edit(basePayment, "balance_fen", "null"), true)
	bil("PAYMENT with fractional balance_fen", edit(basePayment, "balance_fen", "1.5"), false)
	bil("channel as number", edit(basePayment, "channel", "1"), false)
	bil("channel null", edit(basePayment, "channel", "null"), true)

	// crm.events
	crm := func(name, msg string, ok bool) { add("crm.events", name, msg, ok) }
	crm("SPEC 2.3 example", `{"event_id":"r-1","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T08:00:00+08:00","profile":{"name":"张三","birthday":"1985-11-25","tier":"gold","region":"fuzhou-linchuan","account_manager":"am-017","phone_manager":"pm-003","promo_end":"2026-12-15","join_date":"2015-03-01","status":"active"}}`, true)
	crm("PROFILE", baseProfile, true)
	crm("PROFILE without profile", edit(baseProfile, "profile", "-"), false)
	crm("PROFILE with null profile", withProfile("null"), false)
	crm("PROFILE with empty profile", withProfile("{}"), true)
	crm("PROFILE with profile string", withProfile(`"gold"`), false)
	crm("PROFILE with profile array", withProfile(`[]`), false)
	crm("partial profile", withProfile(`{"region":"fuzhou","promo_end":""}`), true)
	crm("profile extra field", withProfile(`{"region":"fuzhou","vip_since":"2019"}`), true)
	crm("profile null fields", withProfile(`{"name":null,"tier":null,"birthday":null}`), true)
	crm("profile tier typo", withProfile(`{"tier":"platinum"}`), false)
	crm("profile tier capitalised", withProfile(`{"tier":"Gold"}`), false)
	crm("profile tier empty", withProfile(`{"tier":""}`), true)
	crm("profile birthday slashes", withProfile(`{"birthday":"1985/11/25"}`), false)
	crm("profile birthday February 30", withProfile(`{"birthday":"1985-02-30"}`), false)
	crm("profile birthday with time", withProfile(`{"birthday":"1985-11-25T00:00:00+08:00"}`), false)
	crm("profile birthday empty", withProfile(`{"birthday":""}`), true)
	crm("profile promo_end bad", withProfile(`{"promo_end":"2026-12"}`), false)
	crm("profile join_date bad", withProfile(`{"join_date":"15-03-01"}`), false)
	crm("profile region as number", withProfile(`{"region":7}`), false)
	crm("profile name as object", withProfile(`{"name":{"first":"三"}}`), false)
	crm("workbench profile", withProfile(`{"interests":["golf","tea"],"group":{"id":"G-1","name":"某某科技","level":"A2"},"products":["family-plan","139-mailbox"],"network_age_months":138}`), true)
	crm("interests empty list clears", withProfile(`{"interests":[]}`), true)
	crm("interests null", withProfile(`{"interests":null}`), true)
	crm("interests as string", withProfile(`{"interests":"golf"}`), false)
	crm("interests with a number", withProfile(`{"interests":["golf",7]}`), false)
	crm("interests with an empty label", withProfile(`{"interests":["golf",""]}`), false)
	crm("interests with null", withProfile(`{"interests":["golf",null]}`), false)
	crm("products 64 labels", withProfile(`{"products":[`+strings.TrimSuffix(strings.Repeat(`"p",`, 64), ",")+`]}`), true)
	crm("products 65 labels", withProfile(`{"products":[`+strings.TrimSuffix(strings.Repeat(`"p",`, 65), ",")+`]}`), false)
	crm("products as object", withProfile(`{"products":{"a":1}}`), false)
	crm("group empty object clears", withProfile(`{"group":{}}`), true)
	crm("group null", withProfile(`{"group":null}`), true)
	crm("group without level", withProfile(`{"group":{"name":"某某科技"}}`), true)
	crm("group level empty", withProfile(`{"group":{"id":"G-1","level":""}}`), true)
	crm("group level lower case", withProfile(`{"group":{"id":"G-1","level":"a1"}}`), false)
	crm("group level D", withProfile(`{"group":{"id":"G-1","level":"D"}}`), false)
	crm("group level as number", withProfile(`{"group":{"id":"G-1","level":1}}`), false)
	crm("group as string", withProfile(`{"group":"G-1"}`), false)
	crm("group id as number", withProfile(`{"group":{"id":42}}`), false)
	crm("group extra key", withProfile(`{"group":{"id":"G-1","since":"2019"}}`), true)
	crm("network_age_months zero", withProfile(`{"network_age_months":0}`), true)
	crm("network_age_months 1200", withProfile(`{"network_age_months":1200}`), true)
	crm("network_age_months 1201", withProfile(`{"network_age_months":1201}`), false)
	crm("network_age_months negative", withProfile(`{"network_age_months":-1}`), false)
	crm("network_age_months fractional", withProfile(`{"network_age_months":12.5}`), false)
	crm("network_age_months as string", withProfile(`{"network_age_months":"12"}`), false)
	crm("PORT_OUT_QUERY", basePortOut, true)
	crm("PORT_OUT_QUERY with null profile", edit(basePortOut, "profile", "null"), true)
	crm("PORT_OUT_QUERY with a bad profile", edit(basePortOut, "profile", `{"tier":"platinum"}`), false)
	crm("type typo", edit(basePortOut, "type", `"PORT_OUT"`), false)
	crm("type lower case", edit(basePortOut, "type", `"deactivate"`), false)

	// churn.task-updates
	upd := func(name, msg string, ok bool) { add("churn.task-updates", name, msg, ok) }
	xfer := edit(baseUpdate, "status", `"TRANSFERRED"`, "to", `"am-021"`)
	upd("SPEC 2.4 example", `{"task_id":"...","msisdn":"13800000001","status":"CONTACTED","by":"am-017","to":"","note":"visited, offered family plan","ts":"2026-11-23T15:00:00+08:00"}`, true)
	upd("TRANSFERRED with to", xfer, true)
	upd("TRANSFERRED without to", edit(xfer, "to", "-"), false)
	upd("TRANSFERRED with empty to", edit(xfer, "to", `""`), false)
	upd("TRANSFERRED with null to", edit(xfer, "to", `null`), false)
	upd("TRANSFERRED with numeric to", edit(xfer, "to", `17`), false)
	upd("CONTACTED with empty to", edit(baseUpdate, "to", `""`), true)
	upd("status typo", edit(baseUpdate, "status", `"DONE"`), false)
	upd("status lower case", edit(baseUpdate, "status", `"accepted"`), false)
	upd("status OPEN is not an update", edit(baseUpdate, "status", `"OPEN"`), false)
	upd("status ESCALATED is not an update", edit(baseUpdate, "status", `"ESCALATED"`), false)
	upd("by as number", edit(baseUpdate, "by", `17`), false)
	upd("by null", edit(baseUpdate, "by", `null`), true)
	upd("note null", edit(baseUpdate, "note", `null`), true)
	upd("note as array", edit(baseUpdate, "note", `["a"]`), false)
	return cs
}

func TestSchemaAgreesWithDecoder(t *testing.T) {
	docs := loadAll(t)
	seen := map[string]bool{}
	perTopic := map[string]int{}
	for _, tc := range agreementCases() {
		name := tc.topic + "/" + tc.name
		if seen[name] {
			t.Fatalf("duplicate scenario name %q", name)
		}
		seen[name] = true
		perTopic[tc.topic]++
		t.Run(name, func(t *testing.T) {
			checkAgreement(t, docs[tc.topic], tc.msg, tc.valid)
		})
	}
	for _, topic := range inputTopics {
		if perTopic[topic] < 8 {
			t.Errorf("%s: only %d scenarios", topic, perTopic[topic])
		}
	}
}

// TestSchemaKnownDisagreements lists the messages on which the schema and the
// Go decoder knowingly differ, because JSON Schema cannot express what
// the decoder's JSON layer and time.Parse do. If a case starts to agree (say decode.go
// was tightened), move it to agreementCases.
func TestSchemaKnownDisagreements(t *testing.T) {
	docs := loadAll(t)
	tests := []struct {
		name, topic, msg string
		schemaOK, goOK   bool
		why              string
	}{
		{"integer written with a fraction", "cdr.voice", edit(baseCDR, "duration_s", `75.0`), true, false,
			"JSON Schema's integer is any number with a zero fraction; the decoder wants the literal digits"},
		{"integer written with an exponent", "billing.events", edit(basePayment, "amount_fen", `1e4`), true, false,
			"same as above"},
		{"duplicate key, the last one valid", "cdr.voice", strings.Replace(baseCDR, `"direction":"MO"`, `"direction":"UP","direction":"MO"`, 1), true, false,
			"JSON Schema validates the parsed value, in which the last duplicate has won; the decoder rejects duplicate keys"},
		{"comma before fractional seconds", "crm.events", edit(basePortOut, "ts", `"2026-11-22T09:00:00,5+08:00"`), false, true,
			"time.Parse accepts a comma, RFC 3339 only a dot"},
		{"local year 2000 that is UTC 1999", "churn.task-updates", edit(baseUpdate, "ts", `"2000-01-01T00:00:00+08:00"`), true, false,
			"the 2000-2099 bound is on the instant in Go, on the written year in the schema"},
		{"local year 1999 that is UTC 2000", "churn.task-updates", edit(baseUpdate, "ts", `"1999-12-31T23:00:00-08:00"`), false, true,
			"the 2000-2099 bound is on the instant in Go, on the written year in the schema"},
	}
	for _, tt := range tests {
		t.Run(tt.topic+"/"+tt.name, func(t *testing.T) {
			schemaErr, goErr := verdicts(docs[tt.topic], tt.msg)
			if (schemaErr == nil) != tt.schemaOK || (goErr == nil) != tt.goOK {
				t.Errorf("known disagreement changed (%s): schema %s (%v), Go %s (%v); want schema %s, Go %s\nmessage: %s",
					tt.why, valid(schemaErr), schemaErr, valid(goErr), goErr,
					valid(errFor(tt.schemaOK)), valid(errFor(tt.goOK)), tt.msg)
			}
		})
	}
}

// TestSchemaExampleFiles runs the shared example files through both
// validators.
func TestSchemaExampleFiles(t *testing.T) {
	docs := loadAll(t)
	for _, topic := range inputTopics {
		lines := readExampleLines(t, filepath.Join("testdata", "examples", topic+".jsonl"))
		if len(lines) == 0 {
			t.Errorf("%s: no examples", topic)
		}
		for i, line := range lines {
			t.Run(fmt.Sprintf("valid/%s/line%d", topic, i+1), func(t *testing.T) {
				checkAgreement(t, docs[topic], line, true)
			})
		}
	}
	lines := readExampleLines(t, filepath.Join("testdata", "examples", "invalid.txt"))
	if len(lines) == 0 {
		t.Error("invalid.txt: no examples")
	}
	for i, line := range lines {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 || docs[parts[0]] == nil || decoder(parts[0]) == nil {
			t.Errorf("invalid.txt line %d: want topic<TAB>message<TAB>reason with an input topic, got %q", i+1, line)
			continue
		}
		t.Run(fmt.Sprintf("invalid/line%d/%s", i+1, parts[2]), func(t *testing.T) {
			checkAgreement(t, docs[parts[0]], parts[1], false)
		})
	}
}

func readExampleLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestSchemaEnums checks that every enum in the schemas is exactly the set of
// values the Go code (or, for signal codes, SPEC section 4) allows, and that
// each value is accepted by both validators while a misspelling is not.
func TestSchemaEnums(t *testing.T) {
	docs := loadAll(t)
	strs := func(vs ...any) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = reflect.ValueOf(v).String()
		}
		return out
	}
	var networks, tiers []any
	for _, n := range schemas.Networks {
		networks = append(networks, n)
	}
	for _, tr := range schemas.Tiers {
		tiers = append(tiers, tr)
	}
	tests := []struct {
		topic, pointer string
		want           []string
		// msg builds a valid input message carrying v (nil for outputs).
		msg func(v string) string
	}{
		{"cdr.voice", "/properties/direction/enum",
			strs(schemas.DirectionMO, schemas.DirectionMT, schemas.DirectionFWD),
			func(v string) string {
				return edit(baseCDR, "direction", `"`+v+`"`, "forward_to", `"13312345678"`)
			}},
		{"cdr.voice", "/properties/peer_network/anyOf/0/enum", strs(networks...),
			func(v string) string { return edit(baseCDR, "peer_network", `"`+v+`"`) }},
		{"billing.events", "/properties/type/enum",
			strs(schemas.BillingPayment, schemas.BillingBill, schemas.BillingBalance, schemas.BillingArrears),
			func(v string) string { return edit(baseBill, "type", `"`+v+`"`, "balance_fen", "0") }},
		{"crm.events", "/properties/type/enum",
			strs(schemas.CRMProfile, schemas.CRMPortOutQuery, schemas.CRMPreCancel, schemas.CRMLossReport,
				schemas.CRMSuspendRequest, schemas.CRMDeactivate, schemas.CRMReactivate),
			func(v string) string { return edit(baseProfile, "type", `"`+v+`"`) }},
		{"crm.events", "/$defs/profile/properties/tier/anyOf/0/enum", strs(tiers...),
			func(v string) string { return withProfile(`{"tier":"` + v + `"}`) }},
		{"crm.events", "/$defs/profile/properties/group/properties/level/anyOf/0/enum",
			strs(schemas.GroupA1, schemas.GroupA2, schemas.GroupB1, schemas.GroupB2, schemas.GroupC),
			func(v string) string { return withProfile(`{"group":{"id":"G-1","level":"` + v + `"}}`) }},
		{"churn.task-updates", "/properties/status/enum",
			strs(schemas.UpdateAccepted, schemas.UpdateContacted, schemas.UpdateTransferred,
				schemas.UpdateRetained, schemas.UpdateLost, schemas.UpdateClosed),
			func(v string) string { return edit(baseUpdate, "status", `"`+v+`"`, "to", `"am-021"`) }},
		{"churn.warnings", "/properties/signal/enum", signalCodes, nil},
		{"churn.warnings", "/properties/severity/enum",
			strs(schemas.SeverityInfo, schemas.SeverityLow, schemas.SeverityMedium, schemas.SeverityHigh, schemas.SeverityCritical), nil},
		{"churn.warnings", "/properties/tier/enum", strs(tiers...), nil},
		{"churn.tasks", "/properties/tier/enum", strs(tiers...), nil},
		{"churn.tasks", "/properties/signals/items/enum", signalCodes, nil},
		{"churn.tasks", "/properties/status/enum",
			strs(schemas.TaskOpen, schemas.TaskAccepted, schemas.TaskContacted, schemas.TaskEscalated,
				schemas.TaskRetained, schemas.TaskLost, schemas.TaskClosed), nil},
	}
	for _, tt := range tests {
		t.Run(tt.topic+tt.pointer, func(t *testing.T) {
			d := docs[tt.topic]
			got, err := pointer(d.raw, tt.pointer)
			if err != nil {
				t.Fatal(err)
			}
			var gotStrs []string
			for _, v := range got.([]any) {
				s, _ := v.(string)
				gotStrs = append(gotStrs, s)
			}
			if !slices.Equal(gotStrs, tt.want) {
				t.Errorf("enum = %q, want %q", gotStrs, tt.want)
			}
			if tt.msg == nil {
				return
			}
			for _, v := range tt.want {
				t.Run(v, func(t *testing.T) {
					checkAgreement(t, d, tt.msg(v), true)
					checkAgreement(t, d, tt.msg(strings.ToLower(v)+"x"), false)
				})
			}
		})
	}
}

// pointer resolves a JSON pointer (RFC 6901) in doc.
func pointer(doc any, ptr string) (any, error) {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("%s: no %q", ptr, tok)
			}
			cur = v
		case []any:
			var i int
			if _, err := fmt.Sscan(tok, &i); err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("%s: bad index %q", ptr, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("%s: cannot descend into %T", ptr, cur)
		}
	}
	return cur, nil
}

// propertyPointers lists the JSON pointers of every documented property:
// those of the root and of each $defs entry, recursively, but not the
// constraint-only sub-schemas inside allOf/if/then/anyOf.
func propertyPointers(node map[string]any, at string) []string {
	var out []string
	if props, ok := node["properties"].(map[string]any); ok {
		for _, name := range sortedKeys(props) {
			p := at + "/properties/" + name
			out = append(out, p)
			if sub, ok := props[name].(map[string]any); ok {
				out = append(out, propertyPointers(sub, p)...)
			}
		}
	}
	if defs, ok := node["$defs"].(map[string]any); ok {
		for _, name := range sortedKeys(defs) {
			if sub, ok := defs[name].(map[string]any); ok {
				out = append(out, propertyPointers(sub, at+"/$defs/"+name)...)
			}
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestSchemaDocuments checks the documents as documentation: the right set,
// draft 2020-12, relative $id, a description and valid examples on every
// property, inputs open to extra fields, SPEC examples accepted by both
// validators, and shared definitions identical across files.
func TestSchemaDocuments(t *testing.T) {
	want := append(slices.Clone(inputTopics), outputTopics...)
	slices.Sort(want)
	if got := jsonschema.Topics(); !slices.Equal(got, want) {
		t.Fatalf("Topics() = %q, want %q", got, want)
	}
	docs := loadAll(t)
	defs := map[string]any{}
	defFrom := map[string]string{}
	for _, topic := range want {
		d := docs[topic]
		t.Run(topic, func(t *testing.T) {
			if got := d.raw["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %v", got)
			}
			if got := d.raw["$id"]; got != jsonschema.FileName(topic) {
				t.Errorf("$id = %v, want the relative %q", got, jsonschema.FileName(topic))
			}
			for _, k := range []string{"title", "description"} {
				if s, _ := d.raw[k].(string); s == "" {
					t.Errorf("no %s", k)
				}
			}
			if got := d.raw["additionalProperties"]; got != true {
				t.Errorf("additionalProperties = %v, want true (unknown extra fields are accepted)", got)
			}
			props := propertyPointers(d.raw, "")
			if len(props) == 0 {
				t.Fatal("no properties")
			}
			for _, p := range props {
				node, err := pointer(d.raw, p)
				if err != nil {
					t.Fatal(err)
				}
				m, _ := node.(map[string]any)
				if s, _ := m["description"].(string); strings.TrimSpace(s) == "" {
					t.Errorf("%s: no description", p)
				}
				examples, _ := m["examples"].([]any)
				if len(examples) == 0 {
					t.Errorf("%s: no examples", p)
					continue
				}
				sub, err := d.compiler.Compile(d.url + "#" + p)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				for _, ex := range examples {
					if err := sub.Validate(ex); err != nil {
						t.Errorf("%s: example %v does not validate: %v", p, ex, err)
					}
				}
			}
			examples, _ := d.raw["examples"].([]any)
			if len(examples) == 0 {
				t.Error("no message examples")
			}
			for i, ex := range examples {
				if err := d.schema.Validate(ex); err != nil {
					t.Errorf("example %d does not validate: %v", i, err)
				}
				if dec := decoder(topic); dec != nil {
					b, _ := json.Marshal(ex)
					if err := dec(b); err != nil {
						t.Errorf("example %d rejected by the Go decoder: %v", i, err)
					}
				}
			}
			ds, _ := d.raw["$defs"].(map[string]any)
			for name, def := range ds {
				if prev, ok := defs[name]; ok && !reflect.DeepEqual(prev, def) {
					t.Errorf("$defs/%s differs from the one in %s", name, defFrom[name])
				}
				defs[name], defFrom[name] = def, topic
			}
		})
	}
}

func TestSchemaLookup(t *testing.T) {
	for _, topic := range []string{"", "cdr", "cdr.voice.dlq", "../cdr.voice", "*", "churn.tasks/x"} {
		t.Run("unknown "+topic, func(t *testing.T) {
			if b, err := jsonschema.Schema(topic); !errors.Is(err, jsonschema.ErrUnknownTopic) {
				t.Errorf("Schema(%q) = %d bytes, %v; want ErrUnknownTopic", topic, len(b), err)
			}
		})
	}
	a, err := jsonschema.Schema("cdr.voice")
	if err != nil {
		t.Fatal(err)
	}
	a[0] = 'X'
	if b, _ := jsonschema.Schema("cdr.voice"); b[0] == 'X' {
		t.Error("Schema returns shared bytes")
	}
}

// TestOutputSchemas validates what the pipeline marshals for churn.warnings
// and churn.tasks, and checks that the schemas reject broken outputs.
func TestOutputSchemas(t *testing.T) {
	docs := loadAll(t)
	cst := time.FixedZone("CST", 8*3600)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, cst)
	warning := schemas.Warning{
		WarningID:   "4f7c2a9e1b3d5f60",
		MSISDN:      "13800000001",
		Signal:      "hotline_calls",
		Severity:    schemas.SeverityMedium,
		Tier:        schemas.TierGold,
		DetectedAt:  at,
		WindowStart: at.AddDate(0, 0, -7),
		WindowEnd:   at,
		Evidence:    map[string]any{"calls": 4, "threshold": 3, "window_days": 7, "hotline": "10086"},
		Score:       62,
		// Optional fields added to SPEC 2.5.
		Region: "fuzhou-linchuan", AccountManager: "am-017", PhoneManager: "pm-003", RuleVersion: "3f9c0a1b2d4e",
	}
	task := schemas.Task{
		Region:       "fuzhou-linchuan", // optional, added to SPEC 2.6
		TaskID:       "EXAMPLE-TASK-ID",
		Version:      3,
		MSISDN:       "13800000001",
		Tier:         schemas.TierGold,
		Status:       schemas.TaskOpen,
		Assignee:     "am-017",
		AssigneeRole: "account_manager",
		Priority:     1,
		CreatedAt:    at,
		DueAt:        at.Add(24 * time.Hour),
		UpdatedAt:    at.Add(5*time.Hour + 123456789*time.Nanosecond).UTC(),
		Signals:      []string{"hotline_calls", "forward_offnet"},
		WarningIDs:   []string{"4f7c2a9e1b3d5f60", "9a0b1c2d3e4f5061"},
		Score:        81,
		Summary:      "4 calls to 10086 in 7 days; calls forwarded to a China Unicom number",
	}
	type outCase struct {
		name string
		v    any
		ok   bool
	}
	var cases []outCase
	warn := func(name string, ok bool, f func(w *schemas.Warning)) {
		w := warning
		w.Evidence = maps.Clone(warning.Evidence)
		f(&w)
		cases = append(cases, outCase{"churn.warnings/" + name, w, ok})
	}
	tsk := func(name string, ok bool, f func(k *schemas.Task)) {
		k := task
		k.Signals = slices.Clone(task.Signals)
		k.WarningIDs = slices.Clone(task.WarningIDs)
		f(&k)
		cases = append(cases, outCase{"churn.tasks/" + name, k, ok})
	}
	warn("typical", true, func(*schemas.Warning) {})
	for _, s := range signalCodes {
		warn("signal "+s, true, func(w *schemas.Warning) { w.Signal = s })
	}
	for _, s := range []schemas.Severity{schemas.SeverityInfo, schemas.SeverityLow, schemas.SeverityMedium, schemas.SeverityHigh, schemas.SeverityCritical} {
		warn("severity "+string(s), true, func(w *schemas.Warning) { w.Severity = s })
	}
	for _, tr := range schemas.Tiers {
		warn("tier "+string(tr), true, func(w *schemas.Warning) { w.Tier = tr })
		tsk("tier "+string(tr), true, func(k *schemas.Task) { k.Tier = tr })
	}
	warn("UTC times with nanoseconds", true, func(w *schemas.Warning) { w.DetectedAt = at.Add(time.Nanosecond).UTC() })
	warn("empty evidence", true, func(w *schemas.Warning) { w.Evidence = map[string]any{} })
	warn("score 0", true, func(w *schemas.Warning) { w.Score = 0 })
	warn("score 100", true, func(w *schemas.Warning) { w.Score = 100 })
	warn("unknown signal", false, func(w *schemas.Warning) { w.Signal = "hotline_call" })
	warn("unknown severity", false, func(w *schemas.Warning) { w.Severity = "urgent" })
	warn("empty tier", false, func(w *schemas.Warning) { w.Tier = "" })
	warn("score 101", false, func(w *schemas.Warning) { w.Score = 101 })
	warn("negative score", false, func(w *schemas.Warning) { w.Score = -1 })
	warn("msisdn with prefix", false, func(w *schemas.Warning) { w.MSISDN = "+8613800000001" })
	warn("empty warning_id", false, func(w *schemas.Warning) { w.WarningID = "" })
	warn("nil evidence", false, func(w *schemas.Warning) { w.Evidence = nil })
	warn("no rule version (before issue 9)", true, func(w *schemas.Warning) { w.RuleVersion = "" })
	warn("rule version not a hash", false, func(w *schemas.Warning) { w.RuleVersion = "v2" })
	tsk("typical", true, func(*schemas.Task) {})
	for _, s := range []schemas.TaskStatus{schemas.TaskOpen, schemas.TaskAccepted, schemas.TaskContacted, schemas.TaskEscalated, schemas.TaskRetained, schemas.TaskLost, schemas.TaskClosed} {
		tsk("status "+string(s), true, func(k *schemas.Task) { k.Status = s })
	}
	tsk("all signals", true, func(k *schemas.Task) { k.Signals = slices.Clone(signalCodes) })
	tsk("escalated to a supervisor", true, func(k *schemas.Task) {
		k.Status, k.Assignee, k.AssigneeRole = schemas.TaskEscalated, "sv-002", "supervisor"
	})
	tsk("version 0", false, func(k *schemas.Task) { k.Version = 0 })
	tsk("unknown status", false, func(k *schemas.Task) { k.Status = "TRANSFERRED" })
	tsk("unknown signal", false, func(k *schemas.Task) { k.Signals = append(k.Signals, "churn") })
	tsk("duplicate signal", false, func(k *schemas.Task) { k.Signals = append(k.Signals, k.Signals[0]) })
	tsk("nil signals", false, func(k *schemas.Task) { k.Signals = nil })
	tsk("nil warning_ids", false, func(k *schemas.Task) { k.WarningIDs = nil })
	tsk("score 101", false, func(k *schemas.Task) { k.Score = 101 })
	tsk("empty task_id", false, func(k *schemas.Task) { k.TaskID = "" })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			topic, _, _ := strings.Cut(tc.name, "/")
			err = docs[topic].validate(b)
			if (err == nil) != tc.ok {
				t.Errorf("schema says %s, want %s\nmessage: %s\nerror: %v", valid(err), valid(errFor(tc.ok)), b, err)
			}
		})
	}
	// Removing any field of a typical message must make it invalid: every
	// field of SPEC 2.5/2.6 is required in the output schemas; the fields
	// added since are optional.
	optional := map[string]bool{"region": true, "account_manager": true, "phone_manager": true, "rule_version": true}
	for topic, v := range map[string]any{"churn.warnings": warning, "churn.tasks": task} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		props, _ := docs[topic].raw["properties"].(map[string]any)
		if len(props) != len(m) {
			t.Errorf("%s: schema documents %d properties, the Go type marshals %d", topic, len(props), len(m))
		}
		for key := range m {
			if _, ok := props[key]; !ok {
				t.Errorf("%s: field %s is not documented in the schema", topic, key)
			}
			if optional[key] {
				continue
			}
			t.Run(topic+"/missing "+key, func(t *testing.T) {
				if err := docs[topic].validate([]byte(edit(string(b), key, "-"))); err == nil {
					t.Errorf("accepted without %s", key)
				}
			})
		}
	}
}
