// Package kafkaconn is the one place that turns the Kafka configuration
// (brokers, TLS, SASL) into what kafka-go connects with: a Dialer for the
// consumer group and the partition readers, a Transport for writers and
// admin clients. Every Kafka connection churnwatch makes goes through a Conn,
// so TLS and SASL apply to all of them.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"churnwatch/pipeline/config"
)

// DialTimeout bounds establishing one connection: TCP, TLS handshake and
// SASL authentication.
const DialTimeout = 10 * time.Second

// Conn says how to reach the brokers. The zero TLS and SASL connect in
// plaintext without authentication (the embedded broker).
type Conn struct {
	Brokers []string
	TLS     *tls.Config
	SASL    sasl.Mechanism
	// user names the SASL user in error messages; never the password.
	user string
}

// New builds the Conn of a validated configuration: it reads the TLS files
// and prepares the SASL mechanism.
func New(cfg config.Kafka) (Conn, error) {
	c := Conn{Brokers: cfg.Brokers, user: cfg.SASL.Username}
	var err error
	if c.TLS, err = cfg.TLS.Config(); err != nil {
		return Conn{}, fmt.Errorf("kafka.tls: %w", err)
	}
	switch cfg.SASL.Mechanism {
	case "":
	case config.SASLPlain:
		c.SASL = plain.Mechanism{Username: cfg.SASL.Username, Password: cfg.SASL.Password}
	case config.SASLScramSHA256, config.SASLScramSHA512:
		algo := scram.SHA256
		if cfg.SASL.Mechanism == config.SASLScramSHA512 {
			algo = scram.SHA512
		}
		if c.SASL, err = scram.Mechanism(algo, cfg.SASL.Username, cfg.SASL.Password); err != nil {
			return Conn{}, fmt.Errorf("kafka.sasl: %w", err)
		}
	default:
		return Conn{}, fmt.Errorf("kafka.sasl.mechanism %q: want %s, %s or %s", cfg.SASL.Mechanism,
			config.SASLScramSHA512, config.SASLScramSHA256, config.SASLPlain)
	}
	return c, nil
}

// Dialer returns a new Dialer for consumer groups and readers.
func (c Conn) Dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: DialTimeout, DualStack: true, TLS: c.TLS, SASLMechanism: c.SASL}
}

// Transport returns a new Transport for writers and clients: each has its
// own connection pool.
func (c Conn) Transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: DialTimeout, TLS: c.TLS, SASL: c.SASL}
}

// Client returns an admin client of the brokers whose requests time out
// after timeout.
func (c Conn) Client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: timeout, Transport: c.Transport()}
}

// Check connects to the brokers, one after the other, until one accepts the
// connection (TLS handshake and SASL authentication included). Its error
// says what failed; Rejected tells a refusal from an outage.
func (c Conn) Check(ctx context.Context) error {
	d := c.Dialer()
	var errs []error
	for _, b := range c.Brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			conn.Close()
			return nil
		}
		errs = append(errs, c.explain(b, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// explain says what a failed connection to broker means for the operator.
func (c Conn) explain(broker string, err error) error {
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return &RejectedError{Broker: broker, Err: err, Hint: fmt.Sprintf("the broker refused user %q with %s: check "+
			"CHURNWATCH_KAFKA_SASL_USERNAME and the password (CHURNWATCH_KAFKA_SASL_PASSWORD or _FILE)", c.user, c.SASL.Name())}
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return &RejectedError{Broker: broker, Err: err, Hint: fmt.Sprintf("the broker does not offer %s: set "+
			"CHURNWATCH_KAFKA_SASL_MECHANISM to one it enables", c.SASL.Name())}
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return &RejectedError{Broker: broker, Err: err, Hint: "the broker's TLS certificate is not trusted: set " +
			"CHURNWATCH_KAFKA_TLS_CA_FILE to the CA that signed it (and CHURNWATCH_KAFKA_TLS_SERVER_NAME if it names another host)"}
	case errors.As(err, &record):
		return &RejectedError{Broker: broker, Err: err, Hint: "the broker does not speak TLS on this port: " +
			"use its TLS listener, or set CHURNWATCH_KAFKA_TLS_ENABLED=false"}
	case c.TLS == nil && errors.Is(err, io.EOF):
		// A TLS listener closes a plaintext connection; so does a broker
		// going down, hence no refusal.
		return fmt.Errorf("kafka broker %s closed the connection: %w (if its listener expects TLS, set CHURNWATCH_KAFKA_TLS_ENABLED=true)", broker, err)
	}
	return fmt.Errorf("kafka broker %s: %w", broker, err)
}

// RejectedError is a connection the broker refused: a wrong password, an
// unknown mechanism, an untrusted certificate. Retrying does not help.
type RejectedError struct {
	Broker string
	Hint   string
	Err    error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("kafka broker %s refused the connection: %s (%v)", e.Broker, e.Hint, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Rejected says whether err (of Check) is a refusal rather than an outage.
func Rejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r)
}
