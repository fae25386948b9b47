package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/ops"
)

// scorecardFlags are the flags of `churnwatch scorecard`.
type scorecardFlags struct {
	month string
	csv   bool
}

func (f *scorecardFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.month, "month", "", "the month, YYYY-MM (in the configured time zone; default this month)")
	fs.BoolVar(&f.csv, "csv", false, "print CSV (UTF-8 with a byte-order mark, as the dashboard's download) instead of a table")
}

// scorecard prints the manager scorecard of a month: every manager's row for
// the operator (no access token) and an admin, a supervisor's team's rows,
// a manager's own row (the user CHURNWATCH_ACCESS_TOKEN names, as for
// `churnwatch subscriber`). Ranks count every manager of the region and
// team, shown or not.
func scorecard(ctx context.Context, cfg config.Config, f scorecardFlags, log zerolog.Logger, stdout, stderr io.Writer) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "churnwatch scorecard: "+format+"\n", args...)
		return code
	}
	loc, err := cfg.Location()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	month := time.Now().In(loc)
	if f.month != "" {
		if month, err = time.ParseInLocation("2006-01", f.month, loc); err != nil {
			return fail(exitUsage, "--month %q: want YYYY-MM, for example 2026-11", f.month)
		}
	}
	access, user, wh, code, err := cliSession(ctx, cfg, log)
	if err != nil {
		return fail(code, "%v", err)
	}
	defer wh.Close()
	rows, err := ops.NewReader(wh.Conn(), wh.Database(), loc).Scorecard(ctx, month, cfg.Scorecard, access, access.Managers(user))
	if err != nil {
		return fail(exitError, "%v", err)
	}
	if f.csv {
		if err := ops.WriteScorecardCSV(stdout, rows); err != nil {
			return fail(exitError, "%v", err)
		}
		return exitOK
	}
	p := cfg.Scorecard
	fmt.Fprintf(stdout, "manager scorecard %s (as %s, %s): %+d per task contacted in time, %+d per retained high-value subscriber, %+d per escalation\n",
		month.Format("2006-01"), user.Name, user.Role, p.ContactedInTime, p.RetainedHighValue, p.Escalation)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tTEAM\tRANK\tMANAGER\tPOINTS\tRECEIVED\tIN TIME\tESCALATED\tRETAINED\tRETAINED HV\tLOST\tMEDIAN RESPONSE")
	for _, s := range rows {
		median := "-"
		if s.MedianResponseSeconds != nil {
			median = strconv.FormatFloat(*s.MedianResponseSeconds/3600, 'f', 1, 64) + " h"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", dash(s.Region), dash(s.Team), s.Rank, s.Manager, s.Points,
			s.Received, s.ContactedInTime, s.Escalated, s.Retained, s.RetainedHigh, s.Lost, median)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d managers\n", len(rows))
	return exitOK
}
