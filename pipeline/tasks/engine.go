// Package tasks turns warnings about high-value subscribers into retention
// tasks and follows them through their life (SPEC section 5): one open task
// per subscriber that later warnings join, routing to the right manager,
// due times by tier, escalation of overdue tasks, the ticketing system's
// updates, and the cooldown after a task closes.
//
// The Engine is pure state and decisions, fed in partition order by its
// owner; it does no I/O. Each change yields the task's next version.
package tasks

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"churnwatch/pipeline/signals"
	"churnwatch/schemas"
)

// Assignee roles.
const (
	RoleAccountManager = "account_manager"
	RolePhoneManager   = "phone_manager"
	RolePool           = "pool"
	RoleSupervisor     = "supervisor"
	RoleTransferred    = "transferred"
)

// Config holds the task rules; DefaultConfig has the SPEC defaults.
type Config struct {
	// Due is the time to respond, by tier; port_out halves it.
	Due map[schemas.Tier]time.Duration `yaml:"due"`
	// Cooldown: after a task closes, the same signal opens no new task for
	// the subscriber for this long (port_out excepted).
	Cooldown time.Duration `yaml:"cooldown"`
	// Pools lists, by region, the managers who take tasks whose subscriber
	// has no manager of the right kind; the "default" pool serves regions
	// without one.
	Pools map[string][]string `yaml:"pools"`
	// Supervisors maps a manager to the supervisor overdue tasks escalate
	// to; DefaultSupervisor takes the rest.
	Supervisors       map[string]string `yaml:"supervisors"`
	DefaultSupervisor string            `yaml:"default_supervisor"`
	// EscalationSchedule is the cron spec of the overdue check.
	EscalationSchedule string `yaml:"escalation_schedule"`
}

// DefaultPool is the pool of regions that have none of their own.
const DefaultPool = "default"

// DefaultConfig returns the SPEC 5 defaults.
func DefaultConfig() Config {
	return Config{
		Due: map[schemas.Tier]time.Duration{
			schemas.TierDiamond: 4 * time.Hour, schemas.TierGold: 24 * time.Hour, schemas.TierSilver: 48 * time.Hour,
		},
		Cooldown:           14 * 24 * time.Hour,
		Pools:              map[string][]string{DefaultPool: {"pool-001"}},
		DefaultSupervisor:  "supervisor-001",
		EscalationSchedule: "@every 1m",
	}
}

// Validate says what is wrong with the task rules.
func (c Config) Validate() error {
	for _, t := range []schemas.Tier{schemas.TierDiamond, schemas.TierGold, schemas.TierSilver} {
		if c.Due[t] <= 0 {
			return fmt.Errorf("tasks.due.%s must be a positive duration", t)
		}
	}
	if c.Cooldown < 0 {
		return fmt.Errorf("tasks.cooldown must not be negative")
	}
	if len(c.Pools[DefaultPool]) == 0 {
		return fmt.Errorf("tasks.pools.%s must name at least one manager (it takes tasks no one else can)", DefaultPool)
	}
	if c.DefaultSupervisor == "" {
		return fmt.Errorf("tasks.default_supervisor is empty")
	}
	return nil
}

// Version is one version of a task with what caused it.
type Version struct {
	schemas.Task
	// Cause is the warning id, the update's key, or "escalation".
	Cause     string
	Escalated bool
	// UpdatedBy and Note are the ticketing update's by and note (the visit
	// or call notes), for versions an update made.
	UpdatedBy, Note string
}

// state is the engine's record of one task.
type state struct {
	task      schemas.Task
	escalated bool
	causes    map[string]bool // warning ids and update keys already applied
}

// Engine holds the tasks of the subscribers of one partition.
type Engine struct {
	cfg    Config
	byID   map[string]*state
	open   map[string]*state               // by msisdn
	closed map[string]map[string]time.Time // msisdn → signal → when a task with it closed
	load   map[string]int                  // open tasks per assignee
}

// NewEngine returns an engine holding the given latest versions (open tasks
// and recently closed ones), as restored from storage.
func NewEngine(cfg Config, restored []Version, causes map[string][]string) *Engine {
	e := &Engine{cfg: cfg, byID: map[string]*state{}, open: map[string]*state{}, closed: map[string]map[string]time.Time{},
		load: map[string]int{}}
	for _, v := range restored {
		st := &state{task: v.Task, escalated: v.Escalated, causes: map[string]bool{}}
		for _, c := range causes[v.TaskID] {
			st.causes[c] = true
		}
		for _, w := range v.WarningIDs {
			st.causes[w] = true
		}
		e.byID[v.TaskID] = st
		if isClosed(v.Status) {
			e.markClosed(st, v.UpdatedAt)
		} else {
			e.open[v.MSISDN] = st
			e.load[v.Assignee]++
		}
	}
	return e
}

// SetLoad adds open-task counts known from elsewhere (other partitions), so
// pool routing sees the whole team's load.
func (e *Engine) SetLoad(counts map[string]int) {
	for m, n := range counts {
		e.load[m] = max(e.load[m], n)
	}
}

func isClosed(s schemas.TaskStatus) bool {
	return s == schemas.TaskRetained || s == schemas.TaskLost || s == schemas.TaskClosed
}

// TaskID is deterministic: the subscriber and the warning that opened it.
func TaskID(msisdn, warningID string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("churnwatch-task|"+msisdn+"|"+warningID)).String()
}

func severityRank(s schemas.Severity) int {
	return map[schemas.Severity]int{schemas.SeverityInfo: 1, schemas.SeverityLow: 2, schemas.SeverityMedium: 3,
		schemas.SeverityHigh: 4, schemas.SeverityCritical: 5}[s]
}

// OnWarning applies a warning and returns the new version it causes, if any.
func (e *Engine) OnWarning(w schemas.Warning) (Version, bool) {
	if st := e.open[w.MSISDN]; st != nil {
		if st.causes[w.WarningID] {
			return Version{}, false // a replay
		}
		return e.join(st, w), true
	}
	if !w.Tier.HighValue() {
		return Version{}, false
	}
	care := w.Signal == signals.Birthday || w.Signal == signals.PromoExpiry
	switch {
	case care && (w.Tier == schemas.TierDiamond || w.Tier == schemas.TierGold):
	case severityRank(w.Severity) >= severityRank(schemas.SeverityMedium):
	default:
		return Version{}, false // info and low warnings only join
	}
	for _, st := range e.byID {
		if st.task.MSISDN == w.MSISDN && st.causes[w.WarningID] {
			return Version{}, false // already part of a closed task
		}
	}
	if closedAt, ok := e.closed[w.MSISDN][w.Signal]; ok && w.Signal != signals.PortOut && w.DetectedAt.Sub(closedAt) < e.cfg.Cooldown {
		return Version{}, false
	}
	return e.create(w), true
}

func (e *Engine) create(w schemas.Warning) Version {
	assignee, role := e.route(w)
	due := e.cfg.Due[w.Tier]
	if w.Signal == signals.PortOut {
		due /= 2
	}
	t := schemas.Task{
		TaskID: TaskID(w.MSISDN, w.WarningID), Version: 1, MSISDN: w.MSISDN, Tier: w.Tier, Status: schemas.TaskOpen,
		Assignee: assignee, AssigneeRole: role, CreatedAt: w.DetectedAt, DueAt: w.DetectedAt.Add(due), UpdatedAt: w.DetectedAt,
		Signals: []string{w.Signal}, WarningIDs: []string{w.WarningID}, Score: w.Score, Region: w.Region,
	}
	st := &state{task: t, causes: map[string]bool{w.WarningID: true}}
	st.task.Priority = priority(w.Tier, w.Severity)
	st.task.Summary = summary(w, nil)
	e.byID[t.TaskID] = st
	e.open[t.MSISDN] = st
	e.load[assignee]++
	return Version{Task: st.task, Cause: w.WarningID}
}

func (e *Engine) join(st *state, w schemas.Warning) Version {
	t := &st.task
	t.Version++
	t.UpdatedAt = maxTime(t.UpdatedAt, w.DetectedAt)
	if !slices.Contains(t.Signals, w.Signal) {
		t.Signals = append(t.Signals, w.Signal)
	}
	t.WarningIDs = append(t.WarningIDs, w.WarningID)
	t.Score = w.Score
	t.Priority = min(t.Priority, priority(t.Tier, w.Severity))
	if w.Signal == signals.PortOut {
		if due := w.DetectedAt.Add(e.cfg.Due[t.Tier] / 2); due.Before(t.DueAt) {
			t.DueAt = due
		}
	}
	t.Summary = summary(w, t)
	st.causes[w.WarningID] = true
	return Version{Task: cloneTask(*t), Cause: w.WarningID, Escalated: st.escalated}
}

// route picks the assignee: the account manager for diamond and gold, the
// phone manager for silver, else the least-loaded member of the region's
// pool (ties by name).
func (e *Engine) route(w schemas.Warning) (string, string) {
	switch {
	case (w.Tier == schemas.TierDiamond || w.Tier == schemas.TierGold) && w.AccountManager != "":
		return w.AccountManager, RoleAccountManager
	case w.Tier == schemas.TierSilver && w.PhoneManager != "":
		return w.PhoneManager, RolePhoneManager
	}
	pool := e.cfg.Pools[w.Region]
	if len(pool) == 0 {
		pool = e.cfg.Pools[DefaultPool]
	}
	best := ""
	for _, m := range pool {
		if best == "" || e.load[m] < e.load[best] || (e.load[m] == e.load[best] && m < best) {
			best = m
		}
	}
	return best, RolePool
}

func priority(tier schemas.Tier, sev schemas.Severity) int {
	switch {
	case severityRank(sev) >= severityRank(schemas.SeverityHigh) || tier == schemas.TierDiamond && severityRank(sev) >= severityRank(schemas.SeverityMedium):
		return 1
	case severityRank(sev) >= severityRank(schemas.SeverityMedium):
		return 2
	default:
		return 3
	}
}

// transitions lists, for each status, the updates ticketing may apply.
var transitions = map[schemas.TaskStatus][]schemas.TaskUpdateStatus{
	schemas.TaskOpen:      {schemas.UpdateAccepted, schemas.UpdateContacted, schemas.UpdateTransferred, schemas.UpdateRetained, schemas.UpdateLost, schemas.UpdateClosed},
	schemas.TaskAccepted:  {schemas.UpdateContacted, schemas.UpdateTransferred, schemas.UpdateRetained, schemas.UpdateLost, schemas.UpdateClosed},
	schemas.TaskEscalated: {schemas.UpdateAccepted, schemas.UpdateContacted, schemas.UpdateTransferred, schemas.UpdateRetained, schemas.UpdateLost, schemas.UpdateClosed},
	schemas.TaskContacted: {schemas.UpdateContacted, schemas.UpdateTransferred, schemas.UpdateRetained, schemas.UpdateLost, schemas.UpdateClosed},
	schemas.TaskRetained:  {schemas.UpdateClosed},
	schemas.TaskLost:      {schemas.UpdateClosed},
	schemas.TaskClosed:    nil,
}

// UpdateKey identifies an update so that a replay of it changes nothing.
func UpdateKey(u schemas.TaskUpdate) string {
	return fmt.Sprintf("update|%s|%s|%s|%s|%s", u.TaskID, u.Status, u.TS.UTC().Format(time.RFC3339Nano), u.By, u.To)
}

// OnUpdate applies a ticketing update. An error says why it was refused
// (unknown task, wrong subscriber, illegal transition); nothing changes then.
func (e *Engine) OnUpdate(u schemas.TaskUpdate) (Version, bool, error) {
	st := e.byID[u.TaskID]
	if st == nil {
		return Version{}, false, fmt.Errorf("unknown task %q for this subscriber (never created, or closed more than the cooldown ago)", u.TaskID)
	}
	t := &st.task
	if t.MSISDN != u.MSISDN {
		return Version{}, false, fmt.Errorf("task %s belongs to another subscriber than msisdn %s", u.TaskID, schemas.MaskMSISDN(u.MSISDN))
	}
	key := UpdateKey(u)
	if st.causes[key] {
		return Version{}, false, nil // a replay
	}
	if !slices.Contains(transitions[t.Status], u.Status) {
		return Version{}, false, fmt.Errorf("illegal transition %s → %s for task %s", t.Status, u.Status, u.TaskID)
	}
	t.Version++
	t.UpdatedAt = u.TS
	switch u.Status {
	case schemas.UpdateTransferred:
		e.load[t.Assignee]--
		t.Assignee, t.AssigneeRole = u.To, RoleTransferred
		e.load[t.Assignee]++
	default:
		t.Status = schemas.TaskStatus(u.Status)
	}
	st.causes[key] = true
	if isClosed(t.Status) && e.open[t.MSISDN] == st {
		delete(e.open, t.MSISDN)
		e.load[t.Assignee]--
		e.markClosed(st, u.TS)
	}
	return Version{Task: cloneTask(*t), Cause: key, Escalated: st.escalated, UpdatedBy: u.By, Note: u.Note}, true, nil
}

func (e *Engine) markClosed(st *state, at time.Time) {
	m := e.closed[st.task.MSISDN]
	if m == nil {
		m = map[string]time.Time{}
		e.closed[st.task.MSISDN] = m
	}
	for _, s := range st.task.Signals {
		if at.After(m[s]) {
			m[s] = at
		}
	}
}

// Escalate marks every open task not yet contacted whose due time has
// passed at now as ESCALATED to its assignee's supervisor, once per task,
// and returns the new versions.
func (e *Engine) Escalate(now time.Time) []Version {
	var out []Version
	for _, st := range e.open {
		t := &st.task
		if st.escalated || !now.After(t.DueAt) || (t.Status != schemas.TaskOpen && t.Status != schemas.TaskAccepted) {
			continue
		}
		sup := e.cfg.Supervisors[t.Assignee]
		if sup == "" {
			sup = e.cfg.DefaultSupervisor
		}
		e.load[t.Assignee]--
		t.Version++
		t.Status, t.Assignee, t.AssigneeRole, t.UpdatedAt = schemas.TaskEscalated, sup, RoleSupervisor, now
		e.load[sup]++
		st.escalated = true
		out = append(out, Version{Task: cloneTask(*t), Cause: "escalation", Escalated: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}

// Open returns the open tasks, by task id.
func (e *Engine) Open() []schemas.Task {
	var out []schemas.Task
	for _, st := range e.open {
		out = append(out, cloneTask(st.task))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}

func cloneTask(t schemas.Task) schemas.Task {
	t.Signals = slices.Clone(t.Signals)
	t.WarningIDs = slices.Clone(t.WarningIDs)
	return t
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// summary says in one line, in Chinese and English, why the task exists:
// every signal with its key evidence, the newest first.
func summary(w schemas.Warning, prev *schemas.Task) string {
	line := describe(w)
	if prev == nil || prev.Summary == "" {
		return line
	}
	if strings.Contains(prev.Summary, line) {
		return prev.Summary
	}
	return line + "; " + prev.Summary
}

func describe(w schemas.Warning) string {
	info, _ := signals.Lookup(w.Signal)
	key := ""
	ev := w.Evidence
	switch w.Signal {
	case signals.HotlineCalls, signals.CompetitorHotline:
		key = fmt.Sprintf("%v calls to %v in %v days", ev["calls"], joinAny(ev["numbers"]), ev["window_days"])
	case signals.ForwardOffnet:
		key = fmt.Sprintf("calls forwarded to a %v number", ev["network"])
	case signals.SuspensionImminent:
		key = fmt.Sprintf("%v", ev["reason"])
		if b, ok := ev["balance_fen"]; ok {
			key += fmt.Sprintf(", balance %v fen", b)
		}
	case signals.PortOut, signals.BusinessOp:
		key = fmt.Sprintf("%v on %v", ev["event"], ev["at"])
	default:
		if len(ev) > 0 {
			var parts []string
			for k, v := range ev {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
			sort.Strings(parts)
			if len(parts) > 3 {
				parts = parts[:3]
			}
			key = strings.Join(parts, ", ")
		}
	}
	s := fmt.Sprintf("%s %s", info.NameZH, info.NameEN)
	if key != "" {
		s += " (" + key + ")"
	}
	return s
}

func joinAny(v any) string {
	switch x := v.(type) {
	case []string:
		return strings.Join(x, "/")
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, "/")
	}
	return fmt.Sprint(v)
}
