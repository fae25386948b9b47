package config

// FuzzLoad feeds Load a fuzzed YAML file and fuzzed environment. Its seed
// corpus is under testdata/fuzz/FuzzLoad and runs with every `go test`; to
// search for new failures:
//
//	go test ./pipeline/config -run XXX -fuzz FuzzLoad -fuzztime 60s

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// parseEnv reads KEY=VALUE lines, the fuzzer's environment.
func parseEnv(text string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, yamlText, envText string) {
		// Load reads the file clickhouse.password_file names; keep the
		// fuzzer away from device files, which never end.
		for _, s := range []string{yamlText, envText} {
			if strings.Contains(s, "/dev") || strings.Contains(s, "/proc") || strings.Contains(s, "/sys") {
				return
			}
		}
		path := filepath.Join(t.TempDir(), "churnwatch.yaml")
		if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
			t.Fatal(err)
		}
		vars := parseEnv(envText)
		getenv := func(k string) string { return vars[k] }
		cfg, err := Load(path, getenv)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("Load failed without saying why")
			}
			// The password must never reach an error message (they are logged).
			if pw := vars["CHURNWATCH_CLICKHOUSE_PASSWORD"]; len(pw) >= 6 && !strings.Contains(yamlText, pw) &&
				!strings.Contains(strings.ReplaceAll(envText, "CHURNWATCH_CLICKHOUSE_PASSWORD="+pw, ""), pw) &&
				strings.Contains(err.Error(), pw) {
				t.Fatalf("error reveals the password: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load returned a configuration that Validate refuses: %v", err)
		}
		checkUsable(t, cfg)
		// What the environment sets wins over the file.
		for name, dst := range envStrings(&cfg) {
			if v := vars[name]; v != "" && *dst != v {
				t.Errorf("%s=%q but the configuration has %q", name, v, *dst)
			}
		}
		again, err := Load(path, getenv)
		if err != nil || !reflect.DeepEqual(again, cfg) {
			t.Fatalf("Load is not deterministic: %v\n%+v\n%+v", err, cfg, again)
		}
	})
}

// checkUsable holds for every configuration Validate accepts: the settings
// the consumers, the broker and the scheduler use cannot stall, overflow or
// fail later at run time.
func checkUsable(t *testing.T, cfg Config) {
	t.Helper()
	in := cfg.Ingest
	if in.BatchSize < 1 || in.FlushInterval <= 0 || in.ShutdownTimeout <= 0 {
		t.Errorf("ingest settings that stall or lose the final flush: %+v", in)
	}
	// Readers fetch up to 2 × max_message_bytes and Kafka sizes are int32.
	if in.MaxMessageBytes < 256 || in.MaxMessageBytes > math.MaxInt32/2 {
		t.Errorf("ingest.max_message_bytes %d", in.MaxMessageBytes)
	}
	if cfg.Broker.Partitions < 1 || cfg.Broker.Partitions > math.MaxInt32 {
		t.Errorf("broker.partitions %d does not fit Kafka's int32", cfg.Broker.Partitions)
	}
	if _, err := cfg.Location(); err != nil {
		t.Errorf("timezone: %v", err)
	}
	if len(cfg.Kafka.Brokers) == 0 {
		t.Error("no brokers")
	}
}
