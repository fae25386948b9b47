package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/numbering"
	"churnwatch/pipeline/realtime"
	"churnwatch/pipeline/signals"
)

// ErrNoRulesFile is the answer to a reload when the rules came from the
// configuration's rules: section rather than a rules file.
var ErrNoRulesFile = errors.New("no rules file to reload: the rules come from the configuration's rules: section; " +
	"move them to a file named by rules_file (CHURNWATCH_RULES_FILE) and restart once, then reloads read that file")

// Reloader holds the rule set of a running pipeline and replaces it from
// the rules file on demand (SIGHUP, POST /-/reload). The real-time states
// follow its Live set event by event; the daily job asks Daily at the start
// of every run. A file that does not load, does not validate or changes
// what only a restart can change is refused, and the rules in effect stay.
type Reloader struct {
	path string
	plan *numbering.Plan
	live *realtime.Live
	log  zerolog.Logger

	mu      sync.Mutex // one reload at a time; guards current
	current config.Rules
}

// NewReloader returns a reloader of the rules file at path ("" when the
// rules come from the configuration), starting with rules; plan is the
// numbering plan built from them at start.
func NewReloader(path string, rules config.Rules, plan *numbering.Plan, log zerolog.Logger) *Reloader {
	return &Reloader{path: path, plan: plan, current: rules, live: realtime.NewLive(RealtimeRules(rules, plan)),
		log: log.With().Str("component", "rules").Logger()}
}

// Live is the rule set the real-time states follow.
func (r *Reloader) Live() *realtime.Live { return r.live }

// Rules returns the rule set in effect.
func (r *Reloader) Rules() config.Rules {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// Daily returns the daily thresholds and the rule version in effect.
func (r *Reloader) Daily() (signals.Thresholds, string) {
	cur := r.live.Load()
	return cur.Thresholds, cur.Version
}

// Reload reads the rules file again and puts it in effect. It returns the
// versions before and after (equal when the file did not change), or why
// the file was refused; then the previous rules stay in effect.
func (r *Reloader) Reload() (previous, version string, err error) {
	if r.path == "" {
		return "", "", ErrNoRulesFile
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	previous = r.current.Version()
	next, err := config.LoadRules(r.path)
	if err != nil {
		return previous, previous, fmt.Errorf("%w; the rules in effect (version %s) stay", err, previous)
	}
	if err := next.ReloadableFrom(r.current); err != nil {
		return previous, previous, fmt.Errorf("rules file %s: %w; the rules in effect (version %s) stay", r.path, err, previous)
	}
	r.current = next
	r.live.Store(RealtimeRules(next, r.plan))
	return previous, next.Version(), nil
}

// reloadAndLog reloads and logs the outcome, as SIGHUP needs.
func (r *Reloader) reloadAndLog(trigger string) {
	previous, version, err := r.Reload()
	if err != nil {
		r.log.Error().Err(err).Str("trigger", trigger).Msg("rules reload refused")
		return
	}
	r.log.Info().Str("trigger", trigger).Str("previous", previous).Str("rule_version", version).
		Bool("changed", previous != version).Msg("rules reloaded")
}

// WatchSIGHUP starts catching SIGHUP at once (so that a SIGHUP from now on
// reloads instead of ending the process) and returns what reloads on each
// one until ctx ends, then returns nil.
func (r *Reloader) WatchSIGHUP() (run func(ctx context.Context) error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				r.reloadAndLog("SIGHUP")
			}
		}
	}
}
