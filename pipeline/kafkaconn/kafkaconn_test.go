package kafkaconn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/lag"
	"churnwatch/pipeline/testenv"
)

const topic = "secure.events"

func connect(t *testing.T, k config.Kafka) kafkaconn.Conn {
	t.Helper()
	c, err := kafkaconn.New(k)
	if err != nil {
		t.Fatalf("kafkaconn.New: %v", err)
	}
	return c
}

// roundTrip writes messages with a Writer on the Conn's Transport, reads
// them back with a Reader on its Dialer, commits them in a consumer group
// and measures the group's lag with a Client: every kind of connection the
// pipeline makes.
func roundTrip(t *testing.T, c kafkaconn.Conn, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(c.Brokers...), Topic: topic, Transport: c.Transport(), RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, Balancer: &kafka.Murmur2Balancer{}}
	defer w.Close()
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	group := "g-" + testenv.Suffix()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Dialer: c.Dialer(), GroupID: group, Topic: topic,
		MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
	defer r.Close()
	for range msgs {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read in consumer group: %v", err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	n, err := lag.Of(ctx, c.Client(10*time.Second), group, []string{topic})
	if err != nil {
		t.Fatalf("lag: %v", err)
	}
	if n != 0 {
		t.Errorf("lag after reading everything: %d, want 0", n)
	}
}

func TestSASLMechanisms(t *testing.T) {
	brokers := testenv.SecureBroker(t, nil, 2, config.SASLScramSHA256, config.SASLScramSHA512, config.SASLPlain)
	for _, tc := range []struct{ mechanism, user, pass string }{
		{config.SASLScramSHA256, testenv.UserSHA256, testenv.PassSHA256},
		{config.SASLScramSHA512, testenv.UserSHA512, testenv.PassSHA512},
		{config.SASLPlain, testenv.UserPlain, testenv.PassPlain},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			roundTrip(t, connect(t, config.Kafka{Brokers: brokers,
				SASL: config.SASL{Mechanism: tc.mechanism, Username: tc.user, Password: tc.pass}}), tc.mechanism)
		})
	}
}

// TestRefusedQuickly: a wrong password, a user of another mechanism and no
// SASL at all are refused within seconds, and Check says what to fix
// without showing the password.
func TestRefusedQuickly(t *testing.T) {
	brokers := testenv.SecureBroker(t, nil, 2, topic)
	const wrong = "not-the-password-42"
	for _, tc := range []struct {
		name string
		sasl config.SASL
		want string
	}{
		{"wrong password 256", config.SASL{Mechanism: config.SASLScramSHA256, Username: testenv.UserSHA256, Password: wrong}, "alice"},
		{"wrong password 512", config.SASL{Mechanism: config.SASLScramSHA512, Username: testenv.UserSHA512, Password: wrong}, "bob"},
		{"wrong mechanism", config.SASL{Mechanism: config.SASLScramSHA512, Username: testenv.UserSHA256, Password: testenv.PassSHA256}, "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, config.Kafka{Brokers: brokers, SASL: tc.sasl})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			err := c.Check(ctx)
			took := time.Since(start)
			t.Logf("Check after %s: %v", took, err)
			if err == nil {
				t.Fatal("Check accepted a wrong credential")
			}
			if !kafkaconn.Rejected(err) {
				t.Errorf("Check: %v is not recognised as a refusal", err)
			}
			if took > 5*time.Second {
				t.Errorf("Check took %s, want a quick refusal", took)
			}
			for _, want := range []string{tc.want, "CHURNWATCH_KAFKA_SASL_PASSWORD"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check's error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testenv.PassSHA256) {
				t.Errorf("Check's error shows the password: %v", err)
			}
			// The clients fail too, within their timeout, instead of hanging.
			start = time.Now()
			if _, err := c.Client(3*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}}); err == nil {
				t.Error("a client with a wrong credential read metadata")
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the client took %s to fail", took)
			}
		})
	}
	t.Run("no SASL", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c := connect(t, config.Kafka{Brokers: brokers})
		if _, err := c.Client(3*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}}); err == nil {
			t.Error("a client without SASL read metadata from a broker that requires it")
		}
	})
}

// TestTLS runs SASL over TLS with a CA made by the test: a client trusting
// that CA works; one without it, or without TLS, is refused quickly; a
// broker requiring client certificates accepts the configured one.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	brokers := testenv.SecureBroker(t, ca.Server, 2, "tls.ok", "tls.skip")
	scram := config.SASL{Mechanism: config.SASLScramSHA512, Username: testenv.UserSHA512, Password: testenv.PassSHA512}
	t.Run("with the CA", func(t *testing.T) {
		roundTrip(t, connect(t, config.Kafka{Brokers: brokers, SASL: scram,
			TLS: config.TLS{Enabled: true, CAFile: ca.CertFile}}), "tls.ok")
	})
	t.Run("insecure skip verify", func(t *testing.T) {
		roundTrip(t, connect(t, config.Kafka{Brokers: brokers, SASL: scram,
			TLS: config.TLS{Enabled: true, InsecureSkipVerify: true}}), "tls.skip")
	})
	refused := func(t *testing.T, k config.Kafka, rejected bool, want string) {
		t.Helper()
		c := connect(t, k)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		err := c.Check(ctx)
		t.Logf("Check after %s: %v", time.Since(start), err)
		if err == nil {
			t.Fatal("Check accepted the connection")
		}
		if took := time.Since(start); took > kafkaconn.DialTimeout+2*time.Second {
			t.Errorf("Check took %s", took)
		}
		if kafkaconn.Rejected(err) != rejected || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v; want rejected=%v and a mention of %q", err, rejected, want)
		}
	}
	t.Run("without the CA", func(t *testing.T) {
		refused(t, config.Kafka{Brokers: brokers, SASL: scram, TLS: config.TLS{Enabled: true}}, true, "CHURNWATCH_KAFKA_TLS_CA_FILE")
	})
	t.Run("wrong server name", func(t *testing.T) {
		refused(t, config.Kafka{Brokers: brokers, SASL: scram,
			TLS: config.TLS{Enabled: true, CAFile: ca.CertFile, ServerName: "kafka.example.com"}}, true, "CHURNWATCH_KAFKA_TLS_SERVER_NAME")
	})
	t.Run("without TLS", func(t *testing.T) {
		refused(t, config.Kafka{Brokers: brokers, SASL: scram}, false, "CHURNWATCH_KAFKA_TLS_ENABLED")
	})
	t.Run("client certificate", func(t *testing.T) {
		mtls := testenv.SecureBroker(t, ca.RequireClientCert(t), 1, "mtls")
		roundTrip(t, connect(t, config.Kafka{Brokers: mtls, SASL: scram,
			TLS: config.TLS{Enabled: true, CAFile: ca.CertFile, CertFile: ca.ClientCertFile, KeyFile: ca.ClientKey}}), "mtls")
		c := connect(t, config.Kafka{Brokers: mtls, SASL: scram, TLS: config.TLS{Enabled: true, CAFile: ca.CertFile}})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Check(ctx); err == nil {
			t.Error("a broker requiring a client certificate accepted a client without one")
		}
	})
}

func TestNewReadsTheFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  config.TLS
		want string
	}{
		{"missing CA", config.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}, "ca_file"},
		{"not PEM", config.TLS{Enabled: true, CAFile: "kafkaconn.go"}, "no PEM certificate"},
		{"missing key", config.TLS{Enabled: true, CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}, "cert_file/key_file"},
	} {
		_, err := kafkaconn.New(config.Kafka{Brokers: []string{"127.0.0.1:1"}, TLS: tc.tls})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "kafka.tls") {
			t.Errorf("%s: %v, want an error about kafka.tls %s", tc.name, err, tc.want)
		}
	}
}
