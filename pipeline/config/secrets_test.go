package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSecretsNotFromYAML: a secret in the file is refused with the
// variables to use instead, and the error does not repeat it.
func TestSecretsNotFromYAML(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, key, env string }{
		{"kafka:\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: u\n    password: hunter2-kafka\n", "kafka.sasl.password", "CHURNWATCH_KAFKA_SASL_PASSWORD"},
		{"clickhouse:\n  password: hunter2-clickhouse\n", "clickhouse.password", "CHURNWATCH_CLICKHOUSE_PASSWORD"},
		{"http:\n  token: hunter2-http-token-0123456789\n", "http.token", "CHURNWATCH_HTTP_TOKEN"},
	} {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, env(nil))
		if err == nil {
			t.Errorf("%s in the YAML file was accepted", tc.key)
			continue
		}
		for _, want := range []string{tc.key, tc.env, tc.env + "_FILE"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the error does not mention %s: %v", tc.key, want, err)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error repeats the secret: %v", tc.key, err)
		}
	}
}

// TestSecretsFromEnvironmentAndFiles: each secret comes from its variable,
// or from the file its _FILE variable or *_file key names.
func TestSecretsFromEnvironmentAndFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kafkaPW, chPW := write("kafka", "k-secret\r\n"), write("ch", "c-secret\n")
	yamlToken := write("token", "t-secret-from-yaml-file-000\n")
	path := write("c.yaml", "http:\n  token_file: "+yamlToken+"\n")
	cfg, err := Load(path, env(map[string]string{
		"CHURNWATCH_KAFKA_SASL_MECHANISM":     "SCRAM-SHA-256",
		"CHURNWATCH_KAFKA_SASL_USERNAME":      "alice",
		"CHURNWATCH_KAFKA_SASL_PASSWORD_FILE": kafkaPW,
		"CHURNWATCH_CLICKHOUSE_PASSWORD_FILE": chPW,
		"CHURNWATCH_KAFKA_TLS_ENABLED":        "true",
		"CHURNWATCH_KAFKA_TLS_CA_FILE":        "/etc/ssl/kafka-ca.pem",
		"CHURNWATCH_CLICKHOUSE_TLS_ENABLED":   "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.SASL.Password != "k-secret" || cfg.ClickHouse.Password != "c-secret" || cfg.HTTP.Token != "t-secret-from-yaml-file-000" {
		t.Errorf("secrets from files: kafka %q, clickhouse %q, http %q", cfg.Kafka.SASL.Password, cfg.ClickHouse.Password, cfg.HTTP.Token)
	}
	if !cfg.Kafka.TLS.Enabled || cfg.Kafka.TLS.CAFile != "/etc/ssl/kafka-ca.pem" || !cfg.ClickHouse.TLS.Enabled || cfg.Kafka.SASL.Username != "alice" {
		t.Errorf("TLS/SASL settings from the environment: %+v %+v", cfg.Kafka, cfg.ClickHouse.TLS)
	}

	// The variable itself wins over a *_file key; both variables at once is an error.
	cfg, err = Load(path, env(map[string]string{"CHURNWATCH_HTTP_TOKEN": "t-secret-from-variable-0000"}))
	if err != nil || cfg.HTTP.Token != "t-secret-from-variable-0000" {
		t.Errorf("CHURNWATCH_HTTP_TOKEN over http.token_file: %q, %v", cfg.HTTP.Token, err)
	}
	_, err = Load("", env(map[string]string{"CHURNWATCH_CLICKHOUSE_PASSWORD": "x", "CHURNWATCH_CLICKHOUSE_PASSWORD_FILE": chPW}))
	if err == nil || !strings.Contains(err.Error(), "set only one") {
		t.Errorf("both CHURNWATCH_CLICKHOUSE_PASSWORD and _FILE: %v", err)
	}
	for name, file := range map[string]string{"missing": filepath.Join(dir, "nope"), "empty": write("empty", "\n")} {
		_, err = Load("", env(map[string]string{"CHURNWATCH_CLICKHOUSE_PASSWORD_FILE": file}))
		if err == nil || !strings.Contains(err.Error(), "CHURNWATCH_CLICKHOUSE_PASSWORD_FILE") {
			t.Errorf("a %s password file: %v, want an error naming the variable", name, err)
		}
	}
}

func TestSecurityErrorsSayWhatToFix(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown mechanism", map[string]string{"CHURNWATCH_KAFKA_SASL_MECHANISM": "GSSAPI"}, "want SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN"},
		{"no username", map[string]string{"CHURNWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "CHURNWATCH_KAFKA_SASL_PASSWORD": "p"},
			"CHURNWATCH_KAFKA_SASL_USERNAME"},
		{"no password", map[string]string{"CHURNWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "CHURNWATCH_KAFKA_SASL_USERNAME": "u"},
			"CHURNWATCH_KAFKA_SASL_PASSWORD_FILE"},
		{"password without mechanism", map[string]string{"CHURNWATCH_KAFKA_SASL_PASSWORD": "p"}, "CHURNWATCH_KAFKA_SASL_MECHANISM"},
		{"CA without TLS", map[string]string{"CHURNWATCH_KAFKA_TLS_CA_FILE": "/ca.pem"}, "CHURNWATCH_KAFKA_TLS_ENABLED"},
		{"certificate without key", map[string]string{"CHURNWATCH_CLICKHOUSE_TLS_ENABLED": "true", "CHURNWATCH_CLICKHOUSE_TLS_CERT_FILE": "/c.pem"},
			"cert_file and key_file"},
		{"not a boolean", map[string]string{"CHURNWATCH_KAFKA_TLS_ENABLED": "yes please"}, "want true or false"},
	} {
		_, err := Load("", env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestMasked(t *testing.T) {
	cfg := Default()
	cfg.Kafka.SASL.Password, cfg.HTTP.Token = "k-secret", "t-secret"
	m := cfg.Masked()
	if m.Kafka.SASL.Password != Masked || m.HTTP.Token != Masked || m.ClickHouse.Password != "" {
		t.Errorf("masked: kafka %q, http %q, clickhouse (unset) %q", m.Kafka.SASL.Password, m.HTTP.Token, m.ClickHouse.Password)
	}
	if cfg.Kafka.SASL.Password != "k-secret" {
		t.Error("Masked changed the configuration it was called on")
	}
}

func TestEnvVarsListsTheSecurityVariables(t *testing.T) {
	vars := EnvVars()
	for _, v := range []string{"CHURNWATCH_KAFKA_SASL_MECHANISM", "CHURNWATCH_KAFKA_SASL_USERNAME", "CHURNWATCH_KAFKA_SASL_PASSWORD",
		"CHURNWATCH_KAFKA_SASL_PASSWORD_FILE", "CHURNWATCH_KAFKA_TLS_ENABLED", "CHURNWATCH_KAFKA_TLS_CA_FILE",
		"CHURNWATCH_KAFKA_TLS_CERT_FILE", "CHURNWATCH_KAFKA_TLS_KEY_FILE", "CHURNWATCH_KAFKA_TLS_SERVER_NAME",
		"CHURNWATCH_KAFKA_TLS_INSECURE_SKIP_VERIFY", "CHURNWATCH_CLICKHOUSE_PASSWORD_FILE", "CHURNWATCH_CLICKHOUSE_TLS_ENABLED",
		"CHURNWATCH_CLICKHOUSE_TLS_CA_FILE", "CHURNWATCH_HTTP_TOKEN_FILE"} {
		if !slices.Contains(vars, v) {
			t.Errorf("EnvVars lacks %s", v)
		}
	}
}
