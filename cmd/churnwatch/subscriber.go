package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/ops"
	"churnwatch/pipeline/warehouse"
)

// subscriberFlags are the flags of `churnwatch subscriber MSISDN`.
type subscriberFlags struct {
	json bool
}

func (f *subscriberFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.json, "json", false, "print the 360 view as JSON")
}

// envAccessToken names the workbench user on the command line: their access
// token, as on the dashboard. Without it the command runs as the operator
// holding the ClickHouse credentials, an admin.
const envAccessToken = "CHURNWATCH_ACCESS_TOKEN"

// cliUser is who looks a subscriber up from the command line.
func cliUser(access *ops.Access, getenv func(string) string) (ops.User, error) {
	if tok := getenv(envAccessToken); tok != "" {
		u, ok := access.Identify(tok)
		if !ok {
			return ops.User{}, fmt.Errorf("%s names no user: use a token of CHURNWATCH_ACCESS_TOKENS, or unset it", envAccessToken)
		}
		return u, nil
	}
	name := getenv("USER")
	if name == "" {
		name = "cli"
	}
	return ops.User{Name: name, Role: config.RoleAdmin}, nil
}

// cliSession is what the workbench commands share: the access rule, the
// user CHURNWATCH_ACCESS_TOKEN names, and the warehouse. It returns the exit
// code and the error to print when one of them cannot be had.
func cliSession(ctx context.Context, cfg config.Config, log zerolog.Logger) (*ops.Access, ops.User, *warehouse.Warehouse, int, error) {
	access, err := ops.NewAccess(cfg)
	if err != nil {
		return nil, ops.User{}, nil, exitUsage, err
	}
	user, err := cliUser(access, os.Getenv)
	if err != nil {
		return nil, ops.User{}, nil, exitUsage, err
	}
	wh, err := openWarehouse(ctx, cfg, log)
	if err != nil {
		return nil, ops.User{}, nil, exitError, err
	}
	return access, user, wh, 0, nil
}

// subscriber prints the 360 view of one subscriber. The lookup is checked
// against the access rule of the user CHURNWATCH_ACCESS_TOKEN names, and
// recorded in the lookups table.
func subscriber(ctx context.Context, cfg config.Config, msisdn string, f subscriberFlags, log zerolog.Logger, stdout, stderr io.Writer) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "churnwatch subscriber: "+format+"\n", args...)
		return code
	}
	if msisdn == "" {
		return fail(exitUsage, "give the subscriber's number: churnwatch subscriber 13912340001")
	}
	loc, err := cfg.Location()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	access, user, wh, code, err := cliSession(ctx, cfg, log)
	if err != nil {
		return fail(code, "%v", err)
	}
	defer wh.Close()
	r := ops.NewReader(wh.Conn(), wh.Database(), loc)
	s, err := r.OpenSubscriber(ctx, access, user, msisdn, "cli", time.Now(), log.With().Str("component", "lookup").Logger())
	var forbidden *ops.ForbiddenError
	switch {
	case errors.As(err, &forbidden):
		return fail(exitForbidden, "%v", err)
	case err != nil:
		return fail(exitError, "%v", err)
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return fail(exitError, "%v", err)
		}
		return exitOK
	}
	writeSubscriber(stdout, s, loc)
	return exitOK
}

// exitForbidden is the exit code of a lookup the access rule refused.
const exitForbidden = 3

func writeSubscriber(out io.Writer, s *ops.Subscriber360, loc *time.Location) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer w.Flush()
	tm := func(t time.Time) string {
		if t.IsZero() || t.Year() < 2000 {
			return ""
		}
		return t.In(loc).Format("2006-01-02 15:04")
	}
	or := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	p := s.Profile
	age := "-"
	if p.NetworkAgeMonths != nil {
		age = fmt.Sprintf("%d months", *p.NetworkAgeMonths)
	}
	group := "-"
	if p.GroupID != "" || p.GroupName != "" {
		group = strings.TrimSpace(fmt.Sprintf("%s %s level %s", p.GroupName, p.GroupID, or(p.GroupLevel)))
	}
	fmt.Fprintf(w, "subscriber\t%s\t%s\n", s.MSISDN, or(p.Name))
	fmt.Fprintf(w, "tier\t%s\tstatus %s, churn score %d\n", p.Tier, or(p.Status), s.ScoreNow)
	fmt.Fprintf(w, "region\t%s\taccount manager %s, phone manager %s\n", or(p.Region), or(p.AccountManager), or(p.PhoneManager))
	fmt.Fprintf(w, "birthday\t%s\tjoined %s, network age %s, promotion ends %s\n", or(p.Birthday), or(p.JoinDate), age, or(p.PromoEnd))
	fmt.Fprintf(w, "group\t%s\t\n", group)
	fmt.Fprintf(w, "interests\t%s\t\n", or(strings.Join(p.Interests, ", ")))
	fmt.Fprintf(w, "products\t%s\t\n", or(strings.Join(p.Products, ", ")))
	for _, t := range s.Tiers {
		fmt.Fprintf(w, "snapshot\t%s\t%s, bill avg %.2f yuan, %s\n", t.Month, t.Tier, float64(t.BillAvgFen)/100, or(t.Status))
	}
	for _, b := range s.Bills {
		fmt.Fprintf(w, "bill\t%s\t%.2f yuan\n", b.Month, float64(b.AmountFen)/100)
	}
	for _, p := range s.Payments {
		fmt.Fprintf(w, "payment\t%s\t%.2f yuan via %s\n", tm(p.TS), float64(p.AmountFen)/100, or(p.Channel))
	}
	var calls, hotline uint64
	var minutes, mo, offnet float64
	for _, u := range s.Usage {
		calls, hotline, minutes, mo, offnet = calls+u.Calls, hotline+u.HotlineCalls, minutes+u.Minutes, mo+u.MOMinutes, offnet+u.OffnetMinutes
	}
	share := 0.0
	if mo > 0 {
		share = offnet / mo
	}
	fmt.Fprintf(w, "usage, %d days\t%d calls, %.0f minutes\toff-net share %.0f%%, %d hotline calls\n", len(s.Usage), calls, minutes, 100*share, hotline)
	for _, x := range s.Warnings {
		fmt.Fprintf(w, "warning\t%s\t%s %s %s (%s) score %d: %s\n", tm(x.DetectedAt), strings.ToUpper(x.Severity), x.Signal, x.SignalZH, x.SignalEN, x.Score, x.Evidence)
	}
	for _, p := range s.Score {
		fmt.Fprintf(w, "score\t%s\t%d\n", tm(p.At), p.Score)
	}
	for _, t := range s.Tasks {
		fmt.Fprintf(w, "task\t%s\t%s, %s, due %s: %s\n", t.TaskID, t.Status, t.Assignee, tm(t.DueAt), t.Summary)
		for _, v := range t.Versions {
			note := ""
			if v.Note != "" {
				note = fmt.Sprintf(" — %s: %q", or(v.UpdatedBy), v.Note)
			}
			fmt.Fprintf(w, "  v%d\t%s\t%s %s (%s)%s\n", v.Version, tm(v.UpdatedAt), v.Status, v.Assignee, v.AssigneeRole, note)
		}
	}
}
