package warehouse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
)

// The password-protected user of deploy/local/clickhouse/users.xml.
const (
	secureUser     = "churnwatch_secure"
	securePassword = "churnwatch-secure-test-password"
)

// TestPasswordProtectedUser connects as a user with a password: the right
// one migrates and inserts; a wrong or missing one, or an unknown user, is
// refused at once with an error that says what to check and does not show
// the password.
func TestPasswordProtectedUser(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	cfg.User, cfg.Password = secureUser, securePassword
	w, err := Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("open as %s: %v (deploy/local/clickhouse.sh start installs the user; restart the server if it predates it)", secureUser, err)
	}
	defer w.Close()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("migrate as %s: %v", secureUser, err)
	}
	if err := w.InsertDeadLetters(ctx, []DeadLetter{{Topic: "cdr.voice", Partition: 1, Offset: 7, Key: []byte("k"),
		Error: "test", Raw: []byte("{"), ReceivedAt: time.Now()}}); err != nil {
		t.Fatalf("insert as %s: %v", secureUser, err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+cfg.Database+".dead_letters").Scan(&n); err != nil || n != 1 {
		t.Fatalf("dead_letters holds %d rows (%v), want the 1 inserted as %s", n, err, secureUser)
	}

	const wrong = "not-the-password-17"
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", secureUser, wrong},
		{"no password", secureUser, ""},
		{"unknown user", "churnwatch_nobody", wrong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := cfg
			bad.User, bad.Password = tc.user, tc.password
			start := time.Now()
			w, err := Open(ctx, bad, zerolog.Nop())
			took := time.Since(start)
			if err == nil {
				w.Close()
				t.Fatal("ClickHouse accepted the login")
			}
			t.Logf("refused after %s: %v", took, err)
			if !Refused(err) {
				t.Errorf("%v is not recognised as a refusal (the pipeline would retry it for ever)", err)
			}
			for _, want := range []string{"authentication", tc.user, "CHURNWATCH_CLICKHOUSE_PASSWORD"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not mention %q: %v", want, err)
				}
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), securePassword) {
				t.Errorf("the error shows a password: %v", err)
			}
			if took > 3*time.Second {
				t.Errorf("refused after %s, want quickly", took)
			}
		})
	}
}

// TestTLSToAPlainPort: TLS to a server that does not speak it fails within
// the dial timeout with an error that says so; unreadable TLS files are a
// configuration error, not an outage.
func TestTLSToAPlainPort(t *testing.T) {
	cfg, _ := testenv.ClickHouse(t)
	cfg.TLS = config.TLS{Enabled: true, InsecureSkipVerify: true}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	w, err := Open(ctx, cfg, zerolog.Nop())
	if err == nil {
		w.Close()
		t.Fatal("TLS to the plain native port succeeded")
	}
	t.Logf("after %s: %v", time.Since(start), err)
	if took := time.Since(start); took > 12*time.Second {
		t.Errorf("took %s", took)
	}
	if !Refused(err) || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("%v: want a refusal that says the server does not speak TLS", err)
	}
	cfg.TLS = config.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := Open(ctx, cfg, zerolog.Nop()); !Refused(err) || !strings.Contains(err.Error(), "clickhouse.tls") {
		t.Errorf("a missing CA file: %v, want a refusal naming clickhouse.tls", err)
	}
}
