package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/ops"
)

// reportFlags are the flags of `churnwatch report`.
type reportFlags struct {
	manager, date, format, out string
}

func (f *reportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.manager, "manager", "", "the manager the report is for (account or phone manager, or assignee), e.g. am-017")
	fs.StringVar(&f.date, "date", "", "local day of the warnings, YYYY-MM-DD (default yesterday)")
	fs.StringVar(&f.format, "format", "csv", "csv, or html for a printable page")
	fs.StringVar(&f.out, "out", "", "write to this file instead of standard output")
}

// report writes a manager's daily anomaly report (客户异常情况表).
func report(ctx context.Context, cfg config.Config, f reportFlags, log zerolog.Logger, stdout, stderr io.Writer) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "churnwatch report: "+format+"\n", args...)
		return code
	}
	loc, err := cfg.Location()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if f.manager = strings.TrimSpace(f.manager); f.manager == "" {
		return fail(exitUsage, "--manager is required, e.g. --manager am-017")
	}
	if f.format != "csv" && f.format != "html" {
		return fail(exitUsage, "--format %q: want csv or html", f.format)
	}
	if f.date == "" {
		f.date = time.Now().In(loc).AddDate(0, 0, -1).Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, f.date); err != nil {
		return fail(exitUsage, "--date %q: want a day like 2026-11-22", f.date)
	}
	wh, err := openWarehouse(ctx, cfg, log)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer wh.Close()
	rep, err := ops.NewReader(wh.Conn(), wh.Database(), loc).Report(ctx, f.manager, f.date, time.Now())
	if err != nil {
		return fail(exitError, "%v", err)
	}
	w := stdout
	if f.out != "" {
		file, err := os.Create(f.out)
		if err != nil {
			return fail(exitError, "%v", err)
		}
		defer file.Close()
		w = file
	}
	if f.format == "html" {
		err = rep.WriteHTML(w)
	} else {
		err = rep.WriteCSV(w)
	}
	if err != nil {
		return fail(exitError, "write the report: %v", err)
	}
	if f.out != "" {
		fmt.Fprintf(stderr, "report of %s for %s: %d subscribers with warnings, written to %s\n", f.manager, f.date, len(rep.Subscribers), f.out)
	}
	return exitOK
}
