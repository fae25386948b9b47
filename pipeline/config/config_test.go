package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load("", env(nil))
	if err != nil {
		t.Fatalf("defaults must be valid: %v", err)
	}
	if cfg.Kafka.Brokers[0] != DefaultBroker || cfg.ClickHouse.Addr != DefaultClickHouseAddr || cfg.Kafka.StartOffset != "earliest" {
		t.Errorf("defaults are not the embedded ones: %+v", cfg)
	}
}

func TestFileThenEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "churnwatch.yaml")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	yaml := `
kafka:
  brokers: [kafka-1:9092, kafka-2:9092]
  group_id: from-file
clickhouse:
  addr: ch:9000
  database: from_file
  password_file: ` + pw + `
topics:
  prefix: "file."
ingest:
  batch_size: 1000
  flush_interval: 250ms
rules:
  hotline_numbers: ["10086", "1008611"]
`
	os.WriteFile(path, []byte(yaml), 0o600)
	cfg, err := Load(path, env(map[string]string{
		"CHURNWATCH_KAFKA_BROKERS":       " a:1 , b:2 ",
		"CHURNWATCH_CLICKHOUSE_DATABASE": "from_env",
		"CHURNWATCH_TOPIC_PREFIX":        "env.",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Kafka.Brokers, ","); got != "a:1,b:2" {
		t.Errorf("brokers = %s, want the environment's", got)
	}
	if cfg.Kafka.GroupID != "from-file" || cfg.ClickHouse.Addr != "ch:9000" || cfg.ClickHouse.Database != "from_env" {
		t.Errorf("file values or env overrides lost: %+v", cfg)
	}
	if cfg.ClickHouse.Password != "s3cret" {
		t.Errorf("password from password_file = %q", cfg.ClickHouse.Password)
	}
	if cfg.Topics.Name(cfg.Topics.CDR) != "env.cdr.voice" {
		t.Errorf("prefixed topic = %s", cfg.Topics.Name(cfg.Topics.CDR))
	}
	if cfg.Ingest.BatchSize != 1000 || cfg.Ingest.FlushInterval != 250*time.Millisecond || len(cfg.Rules.HotlineNumbers) != 2 {
		t.Errorf("ingest/rules from file: %+v %+v", cfg.Ingest, cfg.Rules)
	}
}

func TestErrorsSayWhatToFix(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unknown key", "kafka:\n  brokerz: [x:1]\n", nil, "brokerz"},
		{"bad offset", "kafka:\n  start_offset: middle\n", nil, "earliest or latest"},
		{"bad timezone", "timezone: Mars/Olympus\n", nil, "IANA"},
		{"broker without port", "", map[string]string{"CHURNWATCH_KAFKA_BROKERS": "kafka"}, "want host:port"},
		{"bad duration", "", map[string]string{"CHURNWATCH_FLUSH_INTERVAL": "soon"}, "500ms"},
		{"bad network", "rules:\n  home_network: VODAFONE\n", nil, "home_network"},
		{"zero batch", "ingest:\n  batch_size: 0\n", nil, "batch_size"},
		{"bad refresh duration", "", map[string]string{"CHURNWATCH_REFRESH_INTERVAL": "later"}, "CHURNWATCH_REFRESH_INTERVAL"},
		{"refresh too long", "ingest:\n  refresh_interval: 25h\n", nil, "want a positive duration up to 24h"},
		{"refresh zero", "ingest:\n  refresh_interval: 0s\n", nil, "want a positive duration up to 24h"},
		{"bad compression", "", map[string]string{"CHURNWATCH_CLICKHOUSE_COMPRESSION": "zstd"}, "clickhouse.compression \"zstd\": want auto"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
			os.WriteFile(path, []byte(tt.yaml), 0o600)
			_, err := Load(path, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("case %d: error %v, want it to mention %q", i, err, tt.want)
			}
		})
	}
}

// TestClickHouseCompression: auto compresses blocks except to a loopback
// address; lz4 and none are taken as they are.
func TestClickHouseCompression(t *testing.T) {
	tests := []struct {
		compression, addr string
		want              bool
	}{
		{"auto", "127.0.0.1:9000", false},
		{"auto", "127.0.0.2:19000", false},
		{"auto", "localhost:9000", false},
		{"auto", "[::1]:9000", false},
		{"auto", "10.0.0.5:9000", true},
		{"auto", "clickhouse.example:9440", true},
		{"", "127.0.0.1:9000", false},
		{"lz4", "127.0.0.1:9000", true},
		{"none", "10.0.0.5:9000", false},
	}
	for _, tt := range tests {
		if got := (ClickHouse{Addr: tt.addr, Compression: tt.compression}).Compressed(); got != tt.want {
			t.Errorf("compression %q to %s: compressed %v, want %v", tt.compression, tt.addr, got, tt.want)
		}
	}
	if Default().ClickHouse.Compression != CompressionAuto {
		t.Errorf("default clickhouse.compression %q, want auto", Default().ClickHouse.Compression)
	}
}
