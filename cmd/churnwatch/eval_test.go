package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/signals"
)

// TestEvalCommand runs `churnwatch eval` in-process on a small population
// (its own broker, a scratch database on the test ClickHouse server) and
// reads the printed table: every signal has its row with consistent
// figures, the churners are caught more often than loyal subscribers are
// flagged by hotline_calls, port_out and at least one daily signal, and the
// scratch database is gone afterwards.
func TestEvalCommand(t *testing.T) {
	start := time.Now()
	var stdout, stderr bytes.Buffer
	code := run([]string{"eval", "--subscribers", "300", "--days", "21", "--warmup", "28", "--churn-share", "0.1",
		"--seed", "3", "--end", "2026-11-23"}, &stdout, &stderr)
	out := stdout.String()
	if code != exitOK {
		t.Fatalf("eval exited %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	t.Logf("eval took %s:\n%s", time.Since(start).Round(time.Millisecond), out)

	head := regexp.MustCompile(`^churnwatch eval: seed 3, 21 days evaluated from 2026-11-02 to 2026-11-22 \(Asia/Shanghai\) after 28 days of warm-up, \d+ messages, \d+ s; database (eval_[0-9a-f]+) dropped; rule version ` + config.Default().Rules.Version() + `\n`).
		FindStringSubmatch(out)
	if head == nil {
		t.Fatalf("no header line:\n%s", out)
	}
	truth := regexp.MustCompile(`(?m)^ground truth: 300 subscribers, (\d+) churners \(base churn rate ([0-9.]+)%\), (\d+) loyal$`).FindStringSubmatch(out)
	if truth == nil {
		t.Fatalf("no ground truth line:\n%s", out)
	}
	churners, _ := strconv.Atoi(truth[1])
	loyal, _ := strconv.Atoi(truth[3])
	if churners < 15 || churners+loyal != 300 {
		t.Fatalf("%d churners and %d loyal of 300 subscribers at a share of 0.1", churners, loyal)
	}

	type row struct{ warnings, flagged, caught, late, loyal int }
	rows := map[string]row{}
	cells := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(out, "\n") {
		f := cells.Split(strings.TrimSpace(line), -1)
		if len(f) < 11 || f[1] != string(signals.RealTime) && f[1] != string(signals.Daily) && f[0] != "any signal" {
			continue
		}
		// warnings, flagged, caught, ≤30/60/90 d, late, loyal
		var n [5]int
		for i, col := range []int{2, 3, 4, 6, 7} {
			v, err := strconv.Atoi(f[col])
			if err != nil {
				t.Fatalf("row %q: column %d is not a number", line, col+1)
			}
			n[i] = v
		}
		r := row{n[0], n[1], n[2], n[3], n[4]}
		if r.caught+r.late+r.loyal != r.flagged || r.flagged > r.warnings || r.caught > churners || r.loyal > loyal {
			t.Errorf("inconsistent row %q", line)
		}
		var h30, h60, h90 int
		if _, err := fmt.Sscanf(f[5], "%d/%d/%d", &h30, &h60, &h90); err != nil || h30 > h60 || h60 > h90 || h90 > r.caught {
			t.Errorf("row %q: churned within 30/60/90 days %q must grow and stay within the caught", line, f[5])
		}
		rows[f[0]] = r
	}
	for _, info := range signals.Catalogue() {
		if _, ok := rows[info.Code]; !ok {
			t.Errorf("no row for %s", info.Code)
		}
	}
	if _, ok := rows["any signal"]; !ok {
		t.Error("no row for any signal")
	}
	// Churners are caught (warned before they leave) at a higher rate
	// than loyal subscribers are flagged.
	better := func(code string) bool {
		r := rows[code]
		return r.caught > 0 && float64(r.caught)/float64(churners) > float64(r.loyal)/float64(loyal)
	}
	for _, code := range []string{signals.HotlineCalls, signals.PortOut} {
		if !better(code) {
			t.Errorf("%s catches churners no better than it flags loyal subscribers: %+v", code, rows[code])
		}
	}
	var dailyBetter []string
	for _, code := range daily.Codes() {
		if better(code) {
			dailyBetter = append(dailyBetter, code)
		}
	}
	if len(dailyBetter) == 0 {
		t.Error("no daily signal catches churners better than it flags loyal subscribers")
	}
	if !strings.Contains(out, "\npersona ") || !strings.Contains(out, "\nhotline_complainer ") {
		t.Errorf("no persona table:\n%s", out)
	}

	// The scratch database was dropped.
	addr := config.Default().ClickHouse.Addr
	if a := os.Getenv("CHURNWATCH_CLICKHOUSE_ADDR"); a != "" {
		addr = a
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.databases WHERE name = ?", head[1]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after the run", head[1])
	}
}

func TestEvalFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--churn-share", "1.5"}, "--churn-share"},
		{[]string{"eval", "--days", "0"}, "--days"},
		{[]string{"eval", "--warmup", "-1"}, "--warmup"},
		{[]string{"eval", "--end", "23/11/2026"}, "--end"},
		{[]string{"eval", "--rules", "testdata-missing-rules.yaml"}, "read rules file"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tt.args, &stdout, &stderr); code != exitError || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, want %d with a message about %s:\n%s", tt.args, code, exitError, tt.want, stderr.String())
		}
	}
}
