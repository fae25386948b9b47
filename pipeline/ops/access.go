package ops

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"

	"churnwatch/pipeline/config"
)

// User is who is asking: named by the access token they sent.
type User struct {
	Name, Role, Team, Region string
}

// Admin is the user of the dashboard token (CHURNWATCH_HTTP_TOKEN), and of
// every request when no token is configured at all (loopback only).
var Admin = User{Name: "admin", Role: config.RoleAdmin}

// Access decides who a token names and which subscribers they may open.
type Access struct {
	dashboardToken string
	tokens         map[string]string // user token → name
	users          map[string]User
	// supervisors maps a manager to the supervisor the task rules escalate
	// to (tasks.supervisors), so a supervisor sees those managers' subscribers too.
	supervisors map[string]string
}

// NewAccess builds the access rules from the configuration: the users of
// access.users with their tokens, the dashboard token as an admin's, and the
// task rules' supervisors.
func NewAccess(cfg config.Config) (*Access, error) {
	tokens, err := cfg.Access.UserTokens()
	if err != nil {
		return nil, err
	}
	a := &Access{dashboardToken: cfg.HTTP.Token, tokens: tokens, users: map[string]User{}, supervisors: cfg.Tasks.Supervisors}
	for _, u := range cfg.Access.Users {
		a.users[u.Name] = User{Name: u.Name, Role: u.Role, Team: u.Team, Region: u.Region}
	}
	return a, nil
}

// Open reports whether requests need no token: none is configured.
func (a *Access) Open() bool { return a == nil || (a.dashboardToken == "" && len(a.tokens) == 0) }

// Identify returns the user a token names. Every configured token is
// compared, each in constant time.
func (a *Access) Identify(token string) (User, bool) {
	if a.Open() {
		return Admin, true
	}
	if token == "" {
		return User{}, false
	}
	found, name := false, ""
	if a.dashboardToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.dashboardToken)) == 1 {
		found, name = true, ""
	}
	for t, n := range a.tokens {
		if subtle.ConstantTimeCompare([]byte(token), []byte(t)) == 1 {
			found, name = true, n
		}
	}
	switch {
	case !found:
		return User{}, false
	case name == "":
		return Admin, true
	}
	return a.users[name], true
}

// User returns the configured user of that name; ok is false for a name
// access.users does not list.
func (a *Access) User(name string) (User, bool) {
	if a == nil {
		return User{}, false
	}
	u, ok := a.users[name]
	return u, ok
}

// Team returns the managers a supervisor sees: the users of the same team,
// and the managers whose tasks escalate to them.
func (a *Access) Team(supervisor User) []string {
	var out []string
	if a == nil {
		return out
	}
	for _, u := range a.users {
		if supervisor.Team != "" && u.Team == supervisor.Team {
			out = append(out, u.Name)
		}
	}
	for m, s := range a.supervisors {
		if s == supervisor.Name {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CanOpen says whether u may open a subscriber whose account and phone
// managers are am and pm; when not, the error says why in words for the user.
func (a *Access) CanOpen(u User, am, pm string) error {
	switch u.Role {
	case config.RoleAdmin:
		return nil
	case config.RoleManager:
		if u.Name != "" && (am == u.Name || pm == u.Name) {
			return nil
		}
		return fmt.Errorf("%s is a manager and sees only their own subscribers: this subscriber's account manager is %s and phone manager is %s",
			u.Name, orNone(am), orNone(pm))
	case config.RoleSupervisor:
		team := a.Team(u)
		if slices.Contains(team, am) || slices.Contains(team, pm) || am == u.Name || pm == u.Name {
			return nil
		}
		return fmt.Errorf("%s supervises team %s, and neither this subscriber's account manager (%s) nor phone manager (%s) is in it",
			u.Name, u.Team, orNone(am), orNone(pm))
	}
	return fmt.Errorf("user %s has no role that allows opening subscribers", u.Name)
}

// Managers returns the managers whose subscribers u sees, nil meaning all.
// It is the scope every listing of subscribers (warnings, the live stream,
// tasks, reports, the scorecard) is narrowed to: never nil for a user who is
// not an admin.
func (a *Access) Managers(u User) []string {
	switch u.Role {
	case config.RoleAdmin:
		return nil
	case config.RoleSupervisor:
		return append(a.Team(u), u.Name)
	}
	return []string{u.Name}
}

// CanSeeManager says whether u may read the report of manager: admins any,
// supervisors their team's and their own, managers only their own; when
// not, the error says why in words for the user.
func (a *Access) CanSeeManager(u User, manager string) error {
	scope := a.Managers(u)
	if scope == nil || slices.Contains(scope, manager) {
		return nil
	}
	if u.Role == config.RoleSupervisor {
		return fmt.Errorf("%s supervises team %s, and %s is not in it: ask an admin for that manager's report", u.Name, u.Team, manager)
	}
	return fmt.Errorf("%s is a manager and sees only their own report, not %s's", u.Name, manager)
}

// InScope reports whether a subscriber whose account and phone managers are
// am and pm is in scope (nil: every subscriber).
func InScope(scope []string, am, pm string) bool {
	if scope == nil {
		return true
	}
	return (am != "" && slices.Contains(scope, am)) || (pm != "" && slices.Contains(scope, pm))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

type userKey struct{}

// WithUser returns a context carrying the user a request came from.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user of a request's context (Admin when the
// endpoints need no token).
func UserFrom(ctx context.Context) User {
	if u, ok := ctx.Value(userKey{}).(User); ok {
		return u
	}
	return Admin
}
