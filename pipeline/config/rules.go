package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"churnwatch/schemas"
)

// envRulesFile names the rules file in the environment (rules_file in YAML).
const envRulesFile = "CHURNWATCH_RULES_FILE"

// LoadRules reads a rules file: the keys of the configuration's rules:
// section (thresholds, number lists, home network, prefixes) at its top
// level, over the defaults. The result is validated; an error names the file
// and what to fix. The same files serve `churnwatch backtest --rules`.
func LoadRules(path string) (Rules, error) {
	r := Default().Rules
	data, err := os.ReadFile(path)
	if err != nil {
		return Rules{}, fmt.Errorf("read rules file: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return Rules{}, fmt.Errorf("rules file %s: %w (its keys are those of the rules: section, see README, section Warning signals)", path, err)
	}
	if err := r.Validate(); err != nil {
		return Rules{}, fmt.Errorf("rules file %s: %w", path, err)
	}
	return r, nil
}

// Validate checks the rule set without any network call.
func (r Rules) Validate() error {
	var errs []error
	valid := map[string]bool{}
	for _, n := range schemas.Networks {
		valid[string(n)] = true
	}
	if !valid[r.HomeNetwork] {
		errs = append(errs, fmt.Errorf("rules.home_network %q: want one of CMCC, CUCC, CTCC, CBN", r.HomeNetwork))
	}
	for n := range r.NetworkPrefixes {
		if !valid[n] {
			errs = append(errs, fmt.Errorf("rules.network_prefixes: unknown network %q", n))
		}
	}
	if err := r.Thresholds.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// canonical returns the rule set with its lists in a fixed order and
// without duplicates, so that rule sets that behave alike encode alike.
func (r Rules) canonical() Rules {
	norm := func(xs []string) []string {
		out := slices.Clone(xs)
		slices.Sort(out)
		return slices.Compact(out)
	}
	r.HotlineNumbers = norm(r.HotlineNumbers)
	r.CompetitorHotlines = norm(r.CompetitorHotlines)
	if len(r.NetworkPrefixes) == 0 {
		r.NetworkPrefixes = nil
	} else {
		prefixes := make(map[string][]string, len(r.NetworkPrefixes))
		for n, p := range r.NetworkPrefixes {
			prefixes[n] = norm(p)
		}
		r.NetworkPrefixes = prefixes
	}
	return r
}

// Version is the content hash of the rule set: the first 12 hex digits of
// the SHA-256 of its canonical encoding (JSON with sorted keys, under the
// YAML names, lists sorted and deduplicated, durations as Go writes them).
// Every warning records the version of the rules that fired it; the same
// thresholds and lists always give the same version, whatever the file's
// layout, comments or key order.
func (r Rules) Version() string {
	b, err := r.CanonicalJSON()
	if err != nil {
		// Rules hold only numbers, strings and durations: they always encode.
		panic(fmt.Sprintf("encode rules: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// CanonicalJSON is the encoding Version hashes.
func (r Rules) CanonicalJSON() ([]byte, error) {
	y, err := yaml.Marshal(r.canonical())
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := yaml.Unmarshal(y, &tree); err != nil {
		return nil, err
	}
	return json.Marshal(tree) // maps encode with sorted keys
}

// ReloadableFrom says why the rule set r cannot replace old in a running
// process, nil when it can. Thresholds change live; the number lists, the
// home network and the prefix table also decide how facts and aggregates
// are written (hotline_calls, subscriber_daily, peer_network) and which
// calls the real-time windows keep, so changing them needs a restart.
func (r Rules) ReloadableFrom(old Rules) error {
	var errs []error
	a, b := old.canonical(), r.canonical()
	if a.HomeNetwork != b.HomeNetwork {
		errs = append(errs, fmt.Errorf("rules.home_network changed (%s to %s)", a.HomeNetwork, b.HomeNetwork))
	}
	if !slices.Equal(a.HotlineNumbers, b.HotlineNumbers) {
		errs = append(errs, fmt.Errorf("rules.hotline_numbers changed (%v to %v)", a.HotlineNumbers, b.HotlineNumbers))
	}
	if !slices.Equal(a.CompetitorHotlines, b.CompetitorHotlines) {
		errs = append(errs, fmt.Errorf("rules.competitor_hotlines changed (%v to %v)", a.CompetitorHotlines, b.CompetitorHotlines))
	}
	if !maps.EqualFunc(a.NetworkPrefixes, b.NetworkPrefixes, slices.Equal[[]string]) {
		errs = append(errs, errors.New("rules.network_prefixes changed"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: the number lists, home_network and network_prefixes decide how facts are stored and take effect only on a restart; "+
			"restore them in the file to reload the thresholds now, or restart churnwatch run to apply them", errors.Join(errs...))
	}
	return nil
}

// rulesSectionSet reports whether the YAML configuration sets rules:.
func rulesSectionSet(data []byte) bool {
	var probe struct {
		Rules yaml.Node `yaml:"rules"`
	}
	return yaml.Unmarshal(data, &probe) == nil && probe.Rules.Kind != 0
}
