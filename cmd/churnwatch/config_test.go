package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"churnwatch/pipeline/config"
)

// TestConfigPrintMasksSecrets: `churnwatch config print` shows the
// configuration in effect with every secret that is set as ******** and
// every one that is not as empty, whether it came from a variable or a
// _FILE variable, and never the secret itself.
func TestConfigPrintMasksSecrets(t *testing.T) {
	dir := t.TempDir()
	chFile := filepath.Join(dir, "clickhouse-password")
	if err := os.WriteFile(chFile, []byte("ch-Secret-from-file-41\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"kafka-Secret-from-env-17", "ch-Secret-from-file-41", "http-Secret-token-from-env-99"}
	out, code := runCmd(t, []string{
		"CHURNWATCH_KAFKA_BROKERS=kafka-1:9093,kafka-2:9093",
		"CHURNWATCH_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"CHURNWATCH_KAFKA_SASL_USERNAME=churnwatch",
		"CHURNWATCH_KAFKA_SASL_PASSWORD=" + secrets[0],
		"CHURNWATCH_KAFKA_TLS_ENABLED=true",
		"CHURNWATCH_KAFKA_TLS_CA_FILE=/etc/churnwatch/kafka-ca.pem",
		"CHURNWATCH_CLICKHOUSE_USER=churnwatch",
		"CHURNWATCH_CLICKHOUSE_PASSWORD_FILE=" + chFile,
		"CHURNWATCH_HTTP_TOKEN=" + secrets[2],
	}, "config", "print")
	if code != 0 {
		t.Fatalf("config print: exit %d\n%s", code, out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("config print shows the secret %q:\n%s", s, out)
		}
	}
	var printed config.Config
	if err := yaml.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("config print is not YAML of the configuration: %v\n%s", err, out)
	}
	k, ch := printed.Kafka, printed.ClickHouse
	if k.SASL.Password != config.Masked || ch.Password != config.Masked || printed.HTTP.Token != config.Masked {
		t.Errorf("secrets printed as %q, %q, %q; want %s each", k.SASL.Password, ch.Password, printed.HTTP.Token, config.Masked)
	}
	if k.SASL.Mechanism != "SCRAM-SHA-512" || k.SASL.Username != "churnwatch" || !k.TLS.Enabled ||
		k.TLS.CAFile != "/etc/churnwatch/kafka-ca.pem" || ch.PasswordFile != chFile || strings.Join(k.Brokers, ",") != "kafka-1:9093,kafka-2:9093" {
		t.Errorf("config print does not show the settings in effect:\n%s", out)
	}

	// With no secret set they print empty, and the output is a
	// configuration file that loads to the same configuration.
	out, code = runCmd(t, []string{"CHURNWATCH_TOPIC_PREFIX=x."}, "config", "print")
	if code != 0 {
		t.Fatalf("config print: exit %d\n%s", code, out)
	}
	if regexp.MustCompile(`(?m)^\s+(password|token): .+$`).MatchString(strings.ReplaceAll(out, `: ""`, "")) {
		t.Errorf("unset secrets are not printed empty:\n%s", out)
	}
	file := filepath.Join(dir, "printed.yaml")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	again, code := runCmd(t, nil, "config", "print", "--config", file)
	if code != 0 || again != out {
		t.Errorf("the printed configuration does not load back to itself (exit %d):\n%s\nvs\n%s", code, again, out)
	}
}

// TestNoSecretFlags: no command takes a password, token or other secret as
// a flag (flags show up in process listings and shell histories).
func TestNoSecretFlags(t *testing.T) {
	secretFlag := regexp.MustCompile(`(?mi)^\s+-{1,2}\S*(password|passwd|token|secret|sasl)\S*`)
	for _, args := range [][]string{{"run"}, {"broker"}, {"simulate"}, {"migrate"}, {"daily"}, {"rules"},
		{"warnings", "tail"}, {"tasks", "list"}, {"report"}, {"eval"}, {"bench"}, {"config", "print"}} {
		out, code := runCmd(t, nil, append(args, "-h")...)
		if code != 0 || !strings.Contains(out, "-config") {
			t.Errorf("%s -h: exit %d, no flag list:\n%s", strings.Join(args, " "), code, out)
		}
		if m := secretFlag.FindString(out); m != "" {
			t.Errorf("%s has a secret flag %q: secrets come only from CHURNWATCH_* variables or files", strings.Join(args, " "), strings.TrimSpace(m))
		}
	}
}
