package schemas

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func decodeFor(topic string) func([]byte) error {
	switch topic {
	case "cdr.voice":
		return func(b []byte) error { _, err := DecodeCDR(b); return err }
	case "billing.events":
		return func(b []byte) error { _, err := DecodeBilling(b); return err }
	case "crm.events":
		return func(b []byte) error { _, err := DecodeCRM(b); return err }
	case "churn.task-updates":
		return func(b []byte) error { _, err := DecodeTaskUpdate(b); return err }
	}
	return nil
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestExamplesValid(t *testing.T) {
	for _, topic := range []string{"cdr.voice", "billing.events", "crm.events", "churn.task-updates"} {
		for i, line := range readLines(t, filepath.Join("testdata", "examples", topic+".jsonl")) {
			if err := decodeFor(topic)([]byte(line)); err != nil {
				t.Errorf("%s line %d: %v", topic, i+1, err)
			}
		}
	}
}

func TestExamplesInvalid(t *testing.T) {
	wantField := map[string]string{
		"ex-bad-1": "direction", "ex-bad-2": "msisdn", "ex-bad-3": "start_time",
		"ex-bad-4": "forward_to", "ex-bad-5": "bill_month", "ex-bad-6": "profile",
	}
	for _, line := range readLines(t, filepath.Join("testdata", "examples", "invalid.txt")) {
		parts := strings.SplitN(line, "\t", 3)
		err := decodeFor(parts[0])([]byte(parts[1]))
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: want a FieldError (%s), got %v", parts[1], parts[2], err)
			continue
		}
		for id, field := range wantField {
			if strings.Contains(parts[1], `"`+id+`"`) && fe.Field != field {
				t.Errorf("%s: error names field %q, want %q (%v)", id, fe.Field, field, err)
			}
		}
	}
}

func TestDecodeCDR(t *testing.T) {
	const ok = `{"event_id":"e1","msisdn":"13800000001","peer":"10086","direction":"MO","start_time":"2026-11-22T10:00:00+08:00","duration_s":75}`
	tests := []struct {
		name      string
		msg       string
		wantField string // "" with wantErr false means valid
		wantErr   bool
	}{
		{"valid", ok, "", false},
		{"plus86 prefix", strings.Replace(ok, `"13800000001"`, `"+8613800000001"`, 1), "", false},
		{"86 prefix", strings.Replace(ok, `"13800000001"`, `"8613800000001"`, 1), "", false},
		{"unknown extra field", strings.Replace(ok, `}`, `,"roaming":true,"x":{"y":[1]}}`, 1), "", false},
		{"zero duration", strings.Replace(ok, `75`, `0`, 1), "", false},
		{"fractional seconds", strings.Replace(ok, `10:00:00+08:00`, `10:00:00.250+08:00`, 1), "", false},
		{"foreign peer", strings.Replace(ok, `"10086"`, `"+447700900123"`, 1), "", false},
		{"not json", `{"event_id":`, "", true},
		{"array", `[1,2]`, "", true},
		{"invalid utf8", "{\"event_id\":\"\xff\"}", "", true},
		{"trailing garbage", ok + `x`, "", true},
		{"missing event_id", strings.Replace(ok, `"event_id":"e1",`, ``, 1), "event_id", true},
		{"null msisdn", strings.Replace(ok, `"13800000001"`, `null`, 1), "msisdn", true},
		{"landline msisdn", strings.Replace(ok, `"13800000001"`, `"059187654321"`, 1), "msisdn", true},
		{"msisdn wrong type", strings.Replace(ok, `"13800000001"`, `13800000001`, 1), "msisdn", true},
		{"peer with letters", strings.Replace(ok, `"10086"`, `"abc"`, 1), "peer", true},
		{"duration as string", strings.Replace(ok, `75`, `"75"`, 1), "duration_s", true},
		{"duration fractional", strings.Replace(ok, `75`, `7.5`, 1), "duration_s", true},
		{"duration negative", strings.Replace(ok, `75`, `-1`, 1), "duration_s", true},
		{"duration huge", strings.Replace(ok, `75`, `99999999999999999999`, 1), "duration_s", true},
		{"no offset", strings.Replace(ok, `+08:00`, ``, 1), "start_time", true},
		{"ancient", strings.Replace(ok, `2026-`, `1899-`, 1), "start_time", true},
		{"unknown network", strings.Replace(ok, `}`, `,"peer_network":"XXX"}`, 1), "peer_network", true},
		{"lower-case direction", strings.Replace(ok, `"MO"`, `"mo"`, 1), "direction", true},
		{"FWD with target", strings.Replace(strings.Replace(ok, `"MO"`, `"FWD"`, 1), `}`, `,"forward_to":"13312345678"}`, 1), "", false},
		{"bad forward_to", strings.Replace(ok, `}`, `,"forward_to":"13-3"}`, 1), "forward_to", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCDR([]byte(tt.msg))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if c.MSISDN != "13800000001" {
					t.Errorf("msisdn = %q, want normalised 13800000001", c.MSISDN)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("want FieldError, got %v", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tt.wantField, err)
			}
		})
	}
}

func TestDecodeBillingAndCRM(t *testing.T) {
	tests := []struct {
		name, topic, msg, wantField string
		wantErr                     bool
	}{
		{"balance may be negative", "billing.events", `{"event_id":"b","msisdn":"13800000001","type":"BALANCE","ts":"2026-11-22T09:00:00+08:00","balance_fen":-300}`, "", false},
		{"zero payment", "billing.events", `{"event_id":"b","msisdn":"13800000001","type":"PAYMENT","ts":"2026-11-22T09:00:00+08:00","amount_fen":0}`, "", false},
		{"payment without amount", "billing.events", `{"event_id":"b","msisdn":"13800000001","type":"PAYMENT","ts":"2026-11-22T09:00:00+08:00"}`, "amount_fen", true},
		{"balance without balance", "billing.events", `{"event_id":"b","msisdn":"13800000001","type":"BALANCE","ts":"2026-11-22T09:00:00+08:00","amount_fen":1}`, "balance_fen", true},
		{"bad bill month", "billing.events", `{"event_id":"b","msisdn":"13800000001","type":"BILL","ts":"2026-11-22T09:00:00+08:00","amount_fen":1,"bill_month":"2026-13"}`, "bill_month", true},
		{"unknown billing type", "billing.events", `{"event_id":"b","msisdn":"13800000001","type":"REFUND","ts":"2026-11-22T09:00:00+08:00","amount_fen":1}`, "type", true},
		{"amount as float", "billing.events", `{"event_id":"b","msisdn":"13800000001","type":"ARREARS","ts":"2026-11-22T09:00:00+08:00","amount_fen":1.5}`, "amount_fen", true},
		{"port out query", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PORT_OUT_QUERY","ts":"2026-11-22T09:00:00+08:00"}`, "", false},
		{"bad tier", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"tier":"platinum"}}`, "profile.tier", true},
		{"bad birthday", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"birthday":"1985/11/25"}}`, "profile.birthday", true},
		{"profile not object", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":"gold"}`, "profile", true},
		{"profile field wrong type", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"region":7}}`, "profile.region", true},
		{"bad group level", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"group":{"id":"G-1","level":"A3"}}}`, "profile.group.level", true},
		{"negative network age", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"network_age_months":-2}}`, "profile.network_age_months", true},
		{"empty interest", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"interests":["golf",""]}}`, "profile.interests.1", true},
		{"product as number", "crm.events", `{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"products":[7]}}`, "profile.products.0", true},
		{"transfer without to", "churn.task-updates", `{"task_id":"t","msisdn":"13800000001","status":"TRANSFERRED","ts":"2026-11-22T09:00:00+08:00"}`, "to", true},
		{"unknown update status", "churn.task-updates", `{"task_id":"t","msisdn":"13800000001","status":"DONE","ts":"2026-11-22T09:00:00+08:00"}`, "status", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeFor(tt.topic)([]byte(tt.msg))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("want error on field %q, got %v", tt.wantField, err)
			}
		})
	}
}

func TestPartialProfileKeepsAbsentFields(t *testing.T) {
	e, err := DecodeCRM([]byte(`{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"region":"fuzhou","promo_end":""}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := e.Profile
	if p.Tier != nil || p.Name != nil {
		t.Errorf("absent fields must stay nil, got tier=%v name=%v", p.Tier, p.Name)
	}
	if p.Region == nil || *p.Region != "fuzhou" || p.PromoEnd == nil || *p.PromoEnd != "" {
		t.Errorf("present fields must be kept, got region=%v promo_end=%v", p.Region, p.PromoEnd)
	}
}

func TestMaskMSISDN(t *testing.T) {
	if got := MaskMSISDN("13800000001"); got != "138****0001" {
		t.Errorf("MaskMSISDN = %q", got)
	}
}

func TestProfileExtensions(t *testing.T) {
	e, err := DecodeCRM([]byte(`{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00",` +
		`"profile":{"interests":["golf","tea"],"group":{"id":"G-1","name":"某某科技","level":"B1"},"products":[],"network_age_months":138}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := e.Profile
	if p.Interests == nil || !slices.Equal(*p.Interests, []string{"golf", "tea"}) {
		t.Errorf("interests = %v", p.Interests)
	}
	if p.Group == nil || *p.Group != (Group{ID: "G-1", Name: "某某科技", Level: GroupB1}) {
		t.Errorf("group = %+v", p.Group)
	}
	if p.Products == nil || len(*p.Products) != 0 {
		t.Errorf("products = %v, want an empty list (clears the stored one)", p.Products)
	}
	if p.NetworkAgeMonths == nil || *p.NetworkAgeMonths != 138 {
		t.Errorf("network_age_months = %v", p.NetworkAgeMonths)
	}
	e, err = DecodeCRM([]byte(`{"event_id":"r","msisdn":"13800000001","type":"PROFILE","ts":"2026-11-22T09:00:00+08:00","profile":{"interests":null}}`))
	if err != nil || e.Profile.Interests != nil || e.Profile.Group != nil || e.Profile.NetworkAgeMonths != nil {
		t.Errorf("null and absent extensions must stay nil (keep the stored value): %+v %v", e.Profile, err)
	}
}
