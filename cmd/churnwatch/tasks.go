package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/ops"
	"churnwatch/pipeline/warehouse"
)

// taskListFlags are the flags of `churnwatch tasks list`.
type taskListFlags struct {
	assignee, status string
	overdue, json    bool
	limit            int
}

func (f *taskListFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.assignee, "assignee", "", "only tasks assigned to this manager (e.g. am-017)")
	fs.StringVar(&f.status, "status", "", "only these statuses (comma-separated: OPEN, ACCEPTED, CONTACTED, ESCALATED, RETAINED, LOST, CLOSED, or all); default every open status")
	fs.BoolVar(&f.overdue, "overdue", false, "only tasks past their due time that nobody has contacted yet (OPEN, ACCEPTED, ESCALATED)")
	fs.BoolVar(&f.json, "json", false, "print each task as JSON (the churn.tasks format), one per line")
	fs.IntVar(&f.limit, "limit", 1000, "at most this many tasks")
}

// openWarehouse connects to ClickHouse for a one-shot command: it fails
// after a while instead of waiting for the server like the pipeline does.
func openWarehouse(ctx context.Context, cfg config.Config, log zerolog.Logger) (*warehouse.Warehouse, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return warehouse.Open(ctx, cfg.ClickHouse, log)
}

// tasksList prints the tasks at their latest version from tasks_current,
// the earliest due first.
func tasksList(ctx context.Context, cfg config.Config, f taskListFlags, log zerolog.Logger, stdout, stderr io.Writer) int {
	var statuses []string
	for _, s := range ops.SplitList(f.status) {
		s = strings.ToUpper(s)
		if s != "ALL" && !slices.Contains(ops.TaskStatuses, s) {
			fmt.Fprintf(stderr, "churnwatch tasks list: --status %q: want %s or all\n", s, strings.Join(ops.TaskStatuses, ", "))
			return exitUsage
		}
		statuses = append(statuses, s)
	}
	loc, err := cfg.Location()
	if err != nil {
		fmt.Fprintf(stderr, "churnwatch tasks list: %v\n", err)
		return exitUsage
	}
	wh, err := openWarehouse(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "churnwatch tasks list: %v\n", err)
		return exitError
	}
	defer wh.Close()
	now := time.Now()
	ts, err := ops.NewReader(wh.Conn(), wh.Database(), loc).Tasks(ctx, ops.TaskQuery{
		Assignee: strings.TrimSpace(f.assignee), Statuses: statuses, Overdue: f.overdue, Now: now, Limit: f.limit})
	if err != nil {
		fmt.Fprintf(stderr, "churnwatch tasks list: %v\n", err)
		return exitError
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		for _, t := range ts {
			if err := enc.Encode(t); err != nil {
				return exitError
			}
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DUE\tSTATUS\tOVERDUE\tASSIGNEE\tMSISDN\tTIER\tREGION\tPRIO\tSCORE\tSIGNALS\tTASK")
	for _, t := range ts {
		overdue := ""
		if now.After(t.DueAt) && (t.Status == "OPEN" || t.Status == "ACCEPTED" || t.Status == "ESCALATED") {
			overdue = "overdue " + now.Sub(t.DueAt).Round(time.Minute).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", t.DueAt.In(loc).Format("2006-01-02 15:04"), t.Status, dash(overdue),
			dash(t.Assignee), t.MSISDN, t.Tier, dash(t.Region), t.Priority, t.Score, strings.Join(t.Signals, ","), t.TaskID)
	}
	tw.Flush()
	fmt.Fprintln(stdout, strconv.Itoa(len(ts))+" tasks")
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
