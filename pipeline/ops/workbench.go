package ops

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/schemas"
)

// ForbiddenError is a lookup the access rule refused; its message says why.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return "forbidden: " + e.Reason }

// OpenSubscriber is every subscriber lookup, on the dashboard and the
// command line: it checks the access rule for u, records the lookup (in the
// lookups table, with the full number, and in the log, masked), and
// assembles the 360 view. A refused lookup is a *ForbiddenError; an unknown
// number ErrNoSubscriber.
func (r *Reader) OpenSubscriber(ctx context.Context, access *Access, u User, msisdn, via string, now time.Time, log zerolog.Logger) (*Subscriber360, error) {
	m, ok := schemas.NormalizeMSISDN(strings.TrimSpace(msisdn))
	if !ok {
		return nil, fmt.Errorf("%q is not an 11-digit mainland mobile number starting with 1 (optionally +86)", msisdn)
	}
	am, pm, err := r.SubscriberManagers(ctx, m)
	var refused error
	if err == nil {
		refused = access.CanOpen(u, am, pm)
	} else if !errors.Is(err, ErrNoSubscriber) {
		return nil, err
	}
	l := Lookup{At: now, User: u, MSISDN: m, Via: via, Allowed: err == nil && refused == nil}
	switch {
	case errors.Is(err, ErrNoSubscriber):
		l.Reason = "no such subscriber"
	case refused != nil:
		l.Reason = refused.Error()
	}
	ev := log.Info()
	if !l.Allowed {
		ev = log.Warn()
	}
	ev.Str("user", u.Name).Str("role", u.Role).Str("msisdn", schemas.MaskMSISDN(m)).Str("via", via).Bool("allowed", l.Allowed).
		Str("reason", l.Reason).Msg("subscriber lookup")
	if rerr := r.RecordLookup(ctx, l); rerr != nil {
		// An unrecorded lookup is not served: the audit must be complete.
		return nil, rerr
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", m, err)
	case refused != nil:
		return nil, &ForbiddenError{Reason: refused.Error()}
	}
	return r.Subscriber(ctx, m, now)
}

// workbench pages: parsed from the embedded web directory, with the token
// the page was opened with in their asset addresses.
var (
	subscriberPage = template.Must(template.ParseFS(webFS, "web/subscriber.html"))
	scorecardPage  = template.Must(template.ParseFS(webFS, "web/scorecard.html"))
)

func (h *handler) workbenchRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /subscriber", h.page(subscriberPage))
	mux.HandleFunc("GET /scorecard", h.page(scorecardPage))
	mux.HandleFunc("GET /api/me", h.me)
	mux.HandleFunc("GET /api/subscriber", h.subscriber)
	mux.HandleFunc("GET /api/scorecard", h.scorecard)
	mux.HandleFunc("GET /api/tasks/list", h.taskList)
}

// TaskView is one task at its latest version as the task list serves it,
// with whether it is overdue now.
type TaskView struct {
	schemas.Task
	Overdue bool `json:"overdue"`
}

// taskList serves the tasks of the subscribers the user sees (a manager's
// own, a supervisor's team's, every task for an admin) at their latest
// version, earliest due first: ?status=open (the default: every status of
// an open task), all, or a comma-separated list of statuses (OPEN, ...,
// CLOSED); &assignee=M;
// &overdue=true; &limit=N (default 500, at most 5000).
func (h *handler) taskList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var statuses []string
	for _, s := range SplitList(q.Get("status")) {
		if s == "open" { // lower case: every status of an open task
			statuses = append(statuses, "OPEN", "ACCEPTED", "CONTACTED", "ESCALATED")
			continue
		}
		s = strings.ToUpper(s)
		switch {
		case s == "ALL" || slices.Contains(TaskStatuses, s):
			statuses = append(statuses, s)
		default:
			h.fail(w, http.StatusBadRequest, fmt.Errorf("status %q: want open, all or a list of %s", s, strings.Join(TaskStatuses, ", ")))
			return
		}
	}
	overdue := false
	if v := q.Get("overdue"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			h.fail(w, http.StatusBadRequest, fmt.Errorf("overdue %q: want true or false", v))
			return
		}
		overdue = b
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 5000 {
		limit = 500
	}
	now := h.Clock()
	ts, err := h.Reader.Tasks(r.Context(), TaskQuery{Scope: h.scope(r), Assignee: strings.TrimSpace(q.Get("assignee")),
		Statuses: statuses, Overdue: overdue, Now: now, Limit: limit})
	if err != nil {
		h.fail(w, http.StatusBadGateway, err)
		return
	}
	out := make([]TaskView, len(ts))
	for i, t := range ts {
		out[i] = TaskView{Task: t, Overdue: now.After(t.DueAt) &&
			(t.Status == schemas.TaskOpen || t.Status == schemas.TaskAccepted || t.Status == schemas.TaskEscalated)}
	}
	h.writeJSON(w, out)
}

func (h *handler) page(t *template.Template) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var auth string
		if tok := r.URL.Query().Get("token"); tok != "" {
			auth = "?token=" + url.QueryEscape(tok)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := t.Execute(w, struct{ Auth, TimeZone string }{auth, h.Location.String()}); err != nil {
			h.log.Debug().Err(err).Msg("write workbench page")
		}
	}
}

func (h *handler) me(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r.Context())
	h.writeJSON(w, map[string]string{"name": u.Name, "role": u.Role, "team": u.Team, "region": u.Region})
}

// subscriber serves the 360 view of ?msisdn= as JSON: 403 with the reason
// when the user may not open it, 404 for an unknown number.
func (h *handler) subscriber(w http.ResponseWriter, r *http.Request) {
	msisdn := r.URL.Query().Get("msisdn")
	if msisdn == "" {
		h.fail(w, http.StatusBadRequest, errors.New("msisdn is required: /api/subscriber?msisdn=13912340001"))
		return
	}
	s, err := h.Reader.OpenSubscriber(r.Context(), h.Access, UserFrom(r.Context()), msisdn, "web", h.Clock(), h.log)
	var forbidden *ForbiddenError
	switch {
	case errors.As(err, &forbidden):
		h.fail(w, http.StatusForbidden, err)
	case errors.Is(err, ErrNoSubscriber):
		h.fail(w, http.StatusNotFound, err)
	case err != nil && strings.Contains(err.Error(), "not an 11-digit"):
		h.fail(w, http.StatusBadRequest, err)
	case err != nil:
		h.fail(w, http.StatusBadGateway, err)
	default:
		h.writeJSON(w, s)
	}
}

// scorecard serves the manager scorecard of ?month=YYYY-MM (default: this
// month) as JSON, or CSV with format=csv. Managers see their own row,
// supervisors their team's, admins all.
func (h *handler) scorecard(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	month := h.Clock().In(h.Location)
	if m := q.Get("month"); m != "" {
		t, err := time.ParseInLocation("2006-01", m, h.Location)
		if err != nil {
			h.fail(w, http.StatusBadRequest, fmt.Errorf("month %q: want YYYY-MM", m))
			return
		}
		month = t
	}
	u := UserFrom(r.Context())
	rows, err := h.Reader.Scorecard(r.Context(), month, h.Points, h.Access, h.Access.Managers(u))
	if err != nil {
		h.fail(w, http.StatusBadGateway, err)
		return
	}
	if rows == nil {
		rows = []ScoreRow{}
	}
	switch q.Get("format") {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="scorecard-%s.csv"`, month.Format("2006-01")))
		if err := WriteScorecardCSV(w, rows); err != nil {
			h.log.Debug().Err(err).Msg("write scorecard")
		}
	case "", "json":
		h.writeJSON(w, map[string]any{"month": month.Format("2006-01"), "points": h.Points, "rows": rows})
	default:
		h.fail(w, http.StatusBadRequest, errors.New("format: want json or csv"))
	}
}
