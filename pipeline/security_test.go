package pipeline_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/lag"
	"churnwatch/pipeline/testenv"
)

// The password-protected user of deploy/local/clickhouse/users.xml.
const (
	chSecureUser     = "churnwatch_secure"
	chSecurePassword = "churnwatch-secure-test-password"
	httpToken        = "tok-6f1d2c9a8b7e4f30a1b2c3d4"
)

// secureEnv is the environment of a pipeline against a SASL broker (TLS
// when ca is not nil) and the password-protected ClickHouse user: secrets
// from variables and from _FILE variables, as an operator sets them.
func secureEnv(t *testing.T, brokers []string, ch config.ClickHouse, prefix, mechanism, user, pass string, ca *testenv.CA) map[string]string {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"CHURNWATCH_KAFKA_BROKERS":            strings.Join(brokers, ","),
		"CHURNWATCH_KAFKA_GROUP_ID":           "test-" + testenv.Suffix(),
		"CHURNWATCH_KAFKA_SASL_MECHANISM":     mechanism,
		"CHURNWATCH_KAFKA_SASL_USERNAME":      user,
		"CHURNWATCH_KAFKA_SASL_PASSWORD_FILE": pwFile,
		"CHURNWATCH_CLICKHOUSE_ADDR":          ch.Addr,
		"CHURNWATCH_CLICKHOUSE_DATABASE":      ch.Database,
		"CHURNWATCH_CLICKHOUSE_USER":          chSecureUser,
		"CHURNWATCH_CLICKHOUSE_PASSWORD":      chSecurePassword,
		"CHURNWATCH_HTTP_ADDR":                "127.0.0.1:0",
		"CHURNWATCH_HTTP_TOKEN":               httpToken,
		"CHURNWATCH_TOPIC_PREFIX":             prefix,
		"CHURNWATCH_FLUSH_INTERVAL":           "100ms",
		"CHURNWATCH_LOG_LEVEL":                "debug",
	}
	if ca != nil {
		env["CHURNWATCH_KAFKA_TLS_ENABLED"] = "true"
		env["CHURNWATCH_KAFKA_TLS_CA_FILE"] = ca.CertFile
	}
	return env
}

func load(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("load the configuration: %v", err)
	}
	cfg.Ingest.ShutdownTimeout = 5 * time.Second
	return cfg
}

// noSecrets fails the test when text shows any of the secrets.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the secret %q", what, s)
		}
	}
}

// TestPipelineOverSASL runs the whole pipeline against a broker that
// requires SCRAM (SHA-256 in plaintext, SHA-512 over TLS with a CA made by
// the test) and a ClickHouse user with a password, configured as an
// operator would: the events reach ClickHouse, the DLQ gets the bad ones,
// /readyz (its Kafka client), the lag monitor and the group's commits work
// through SASL, and no secret appears in the debug-level log.
func TestPipelineOverSASL(t *testing.T) {
	ca := testenv.NewCA(t)
	for _, tc := range []struct {
		name, mechanism, user, pass string
		ca                          *testenv.CA
	}{
		{"SCRAM-SHA-256", config.SASLScramSHA256, testenv.UserSHA256, testenv.PassSHA256, nil},
		{"SCRAM-SHA-512 over TLS", config.SASLScramSHA512, testenv.UserSHA512, testenv.PassSHA512, &ca},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, conn := testenv.ClickHouse(t)
			prefix := "s" + testenv.Suffix() + "."
			topics := config.Default().Topics
			topics.Prefix = prefix
			var serverTLS *tls.Config
			if tc.ca != nil {
				serverTLS = tc.ca.Server
			}
			brokers := testenv.SecureBroker(t, serverTLS, 4, topics.All()...)
			cfg := load(t, secureEnv(t, brokers, ch, prefix, tc.mechanism, tc.user, tc.pass, tc.ca))
			kconn, err := kafkaconn.New(cfg.Kafka)
			if err != nil {
				t.Fatal(err)
			}

			valid, invalid := examples(t, cfg.Topics)
			w := pipeline.NewWriter(kconn)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := w.WriteMessages(ctx, append(append([]kafka.Message{}, valid...), invalid...)...); err != nil {
				t.Fatalf("produce over SASL: %v", err)
			}
			w.Close()

			var logs testenv.SyncBuffer
			runCtx, stopRun := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- pipeline.Run(runCtx, cfg, zerolog.New(&logs).Level(zerolog.DebugLevel)) }()
			defer func() {
				stopRun()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("pipeline.Run: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Error("the pipeline did not stop within 30 s")
				}
				noSecrets(t, "the pipeline's log", logs.String(), tc.pass, chSecurePassword, httpToken)
				if t.Failed() {
					t.Logf("log:\n%s", logs.String())
				}
			}()

			testenv.Eventually(t, 30*time.Second, func() error {
				got, err := counts(conn, ch.Database)
				if err == nil && (got.cdr != 5 || got.billing != 4 || got.crm != 4 || got.dead != uint64(len(invalid))) {
					err = fmt.Errorf("table counts %+v, want 5 cdr, 4 billing, 4 crm, %d dead letters", got, len(invalid))
				}
				return err
			})
			testenv.Eventually(t, 30*time.Second, func() error {
				n, err := lag.Of(ctx, kconn.Client(5*time.Second), cfg.Kafka.GroupID, cfg.Topics.Inputs())
				if err == nil && n != 0 {
					err = fmt.Errorf("lag %d, want every message committed", n)
				}
				return err
			})
			addr := httpAddr(t, &logs)
			testenv.Eventually(t, 30*time.Second, func() error {
				body, err := getWithToken(addr, "/readyz")
				if err == nil && !strings.Contains(body, `"ready":true`) {
					err = fmt.Errorf("/readyz: %s", body)
				}
				return err
			})
			testenv.Eventually(t, 30*time.Second, func() error {
				body, err := getWithToken(addr, "/metrics")
				if err == nil && !strings.Contains(body, "consumer_lag_messages{") {
					err = fmt.Errorf("/metrics has no consumer lag yet: the lag monitor cannot reach Kafka")
				}
				return err
			})
		})
	}
}

// httpAddr finds the HTTP endpoints' address in the "pipeline started" line.
func httpAddr(t *testing.T, logs *testenv.SyncBuffer) string {
	t.Helper()
	var addr string
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, line := range strings.Split(logs.String(), "\n") {
			var l struct{ Message, HTTP string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "pipeline started" {
				addr = l.HTTP
				return nil
			}
		}
		return fmt.Errorf("no \"pipeline started\" line in the log yet")
	})
	return addr
}

func getWithToken(addr, path string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+httpToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// TestPipelineRefusedCredentials: a wrong Kafka password or a wrong
// ClickHouse password stops the pipeline within seconds with an error that
// says what to fix, instead of retrying for ever, and neither the error nor
// the log shows the password.
func TestPipelineRefusedCredentials(t *testing.T) {
	ch, _ := testenv.ClickHouse(t)
	prefix := "r" + testenv.Suffix() + "."
	topics := config.Default().Topics
	topics.Prefix = prefix
	brokers := testenv.SecureBroker(t, nil, 2, topics.All()...)
	const wrong = "wrong-password-0xC0FFEE"
	for _, tc := range []struct {
		name string
		env  func(map[string]string)
		want []string
	}{
		{"kafka", func(env map[string]string) {
			delete(env, "CHURNWATCH_KAFKA_SASL_PASSWORD_FILE")
			env["CHURNWATCH_KAFKA_SASL_PASSWORD"] = wrong
		}, []string{"refused", testenv.UserSHA512, "CHURNWATCH_KAFKA_SASL_PASSWORD"}},
		{"clickhouse", func(env map[string]string) { env["CHURNWATCH_CLICKHOUSE_PASSWORD"] = wrong },
			[]string{"refused", chSecureUser, "CHURNWATCH_CLICKHOUSE_PASSWORD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := secureEnv(t, brokers, ch, prefix, config.SASLScramSHA512, testenv.UserSHA512, testenv.PassSHA512, nil)
			tc.env(env)
			cfg := load(t, env)
			var logs testenv.SyncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			err := pipeline.Run(ctx, cfg, zerolog.New(&logs).Level(zerolog.DebugLevel))
			took := time.Since(start)
			t.Logf("Run returned after %s: %v", took, err)
			if err == nil {
				t.Fatal("the pipeline ran with a wrong password")
			}
			if took > 15*time.Second {
				t.Errorf("the pipeline took %s to give up", took)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not mention %q: %v", want, err)
				}
			}
			noSecrets(t, "the error", err.Error(), wrong, testenv.PassSHA512, chSecurePassword, httpToken)
			noSecrets(t, "the log", logs.String(), wrong, testenv.PassSHA512, chSecurePassword, httpToken)
		})
	}
}
