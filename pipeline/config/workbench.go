package config

import (
	"fmt"
	"slices"
	"strings"
)

// The roles of access.users.
const (
	RoleManager    = "manager"    // sees the subscribers whose account or phone manager they are
	RoleSupervisor = "supervisor" // sees the subscribers of their team's managers
	RoleAdmin      = "admin"      // sees every subscriber
)

// MinTokenLength is the shortest access token accepted, for the dashboard
// token and for every user's.
const MinTokenLength = 16

// Access names the users of the dashboard and the subscriber lookups: who
// they are, their role, team and region. Their tokens are secrets: they come
// only from CHURNWATCH_ACCESS_TOKENS or the file CHURNWATCH_ACCESS_TOKENS_FILE
// (access.tokens_file) names, as name=token pairs, one a line or separated
// by commas; an access.tokens key in the YAML file is refused. The dashboard
// token (CHURNWATCH_HTTP_TOKEN) keeps working and is an admin's.
type Access struct {
	Users      []User `yaml:"users"`
	TokensFile string `yaml:"tokens_file"`
	Tokens     string `yaml:"tokens"`
}

// User is one person who may look subscribers up. Name is the identifier the
// CRM profiles use for a manager (account_manager, phone_manager) and the
// task routing uses as assignee.
type User struct {
	Name string `yaml:"name"`
	// Role is manager, supervisor or admin.
	Role string `yaml:"role"`
	// Team groups managers under a supervisor of the same team, for
	// example "fuzhou-account-managers".
	Team   string `yaml:"team"`
	Region string `yaml:"region"`
}

// Scorecard is the points scheme of the manager scorecard.
type Scorecard struct {
	// ContactedInTime is earned per task first contacted by its due time.
	ContactedInTime int `yaml:"contacted_in_time"`
	// RetainedHighValue is earned per task ending RETAINED for a diamond,
	// gold or silver subscriber.
	RetainedHighValue int `yaml:"retained_high_value"`
	// Escalation is added per escalated task (negative: a penalty).
	Escalation int `yaml:"escalation"`
}

// DefaultScorecard is the points scheme of a fresh install.
func DefaultScorecard() Scorecard {
	return Scorecard{ContactedInTime: 2, RetainedHighValue: 5, Escalation: -3}
}

// UserTokens parses access.tokens into a map from token to user name. Every
// user it names must be in access.users; tokens must be at least
// MinTokenLength characters and differ from each other. Errors never contain
// a token.
func (a Access) UserTokens() (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(a.Tokens) == "" {
		return out, nil
	}
	names := map[string]bool{}
	for _, u := range a.Users {
		names[u.Name] = true
	}
	for i, pair := range strings.FieldsFunc(a.Tokens, func(r rune) bool { return r == '\n' || r == ',' }) {
		pair = strings.TrimSpace(pair)
		if pair == "" || strings.HasPrefix(pair, "#") {
			continue
		}
		name, token, ok := strings.Cut(pair, "=")
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("access tokens: entry %d is not name=token", i+1)
		case !names[name]:
			return nil, fmt.Errorf("access tokens: user %q is not in access.users: add it there with its role", name)
		case len(token) < MinTokenLength:
			return nil, fmt.Errorf("access tokens: the token of %q is shorter than %d characters", name, MinTokenLength)
		case out[token] != "":
			return nil, fmt.Errorf("access tokens: %q and %q have the same token", out[token], name)
		}
		out[token] = name
	}
	return out, nil
}

// validate checks the users and their tokens.
func (a Access) validate(httpToken string, add func(string, ...any)) {
	seen := map[string]bool{}
	for i, u := range a.Users {
		switch {
		case u.Name == "":
			add("access.users[%d]: name is empty", i)
		case seen[u.Name]:
			add("access.users: %q is listed twice", u.Name)
		}
		seen[u.Name] = true
		if !slices.Contains([]string{RoleManager, RoleSupervisor, RoleAdmin}, u.Role) {
			add("access.users[%d] (%s): role %q: want manager, supervisor or admin", i, u.Name, u.Role)
		}
		if u.Role == RoleSupervisor && u.Team == "" {
			add("access.users[%d] (%s): a supervisor needs a team (the team whose subscribers they see)", i, u.Name)
		}
	}
	tokens, err := a.UserTokens()
	if err != nil {
		add("%v (set in CHURNWATCH_ACCESS_TOKENS or the file CHURNWATCH_ACCESS_TOKENS_FILE names)", err)
		return
	}
	if httpToken != "" && tokens[httpToken] != "" {
		add("access tokens: the token of %q is the dashboard token (CHURNWATCH_HTTP_TOKEN), which is an admin's: give it its own", tokens[httpToken])
	}
}

func (s Scorecard) validate(add func(string, ...any)) {
	if s.ContactedInTime < 0 || s.RetainedHighValue < 0 || s.Escalation > 0 {
		add("scorecard: want contacted_in_time ≥ 0, retained_high_value ≥ 0 and escalation ≤ 0 (a penalty), got %d, %d, %d",
			s.ContactedInTime, s.RetainedHighValue, s.Escalation)
	}
}
