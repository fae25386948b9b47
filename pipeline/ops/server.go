package ops

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/signals"
)

//go:embed web
var webFS embed.FS

// HandlerConfig is what the HTTP endpoints serve from.
type HandlerConfig struct {
	// Token, when set, is required on every request, as
	// "Authorization: Bearer <token>" or "?token=<token>".
	Token    string
	Gatherer prometheus.Gatherer
	Metrics  *Metrics
	Health   *Health
	Hub      *Hub
	Reader   *Reader
	Location *time.Location
	Clock    func() time.Time // time.Now when nil
	Log      zerolog.Logger
	// Access names the user of each request's token (the manager workbench
	// users, or the Token's admin) and what they may open; nil means Token
	// alone.
	Access *Access
	// Points is the manager scorecard's points scheme.
	Points config.Scorecard
	// Reload, when set, reloads the rules file (POST /-/reload) and returns
	// the rule versions before and after, or why the file was refused.
	Reload func() (previous, version string, err error)
	// RuleVersion, when set, tells the rule version in effect (GET /api/rules).
	RuleVersion func() string
}

type handler struct {
	HandlerConfig
	log zerolog.Logger
}

// Timeouts of the HTTP server. Live streams outlive WriteTimeout: their
// handler moves the write deadline forward before every write.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	streamKeepAlive   = 15 * time.Second
)

// NewHTTPServer returns a server for h with its timeouts set. Request
// contexts derive from ctx, so live streams end when ctx ends and
// Shutdown does not wait for them.
func NewHTTPServer(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

// NewHandler returns every endpoint: /metrics, /healthz, /readyz, the
// dashboard (/) with its API (/api/...), and the printable report
// (/report).
func NewHandler(cfg HandlerConfig) http.Handler {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	h := &handler{HandlerConfig: cfg, log: cfg.Log.With().Str("component", "http").Logger()}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: zerologPrinter{h.log}}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", h.readyz)
	static, _ := fs.Sub(webFS, "web")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /api/signals", h.signals)
	mux.HandleFunc("GET /api/warnings", h.recent)
	mux.HandleFunc("GET /api/warnings/stream", h.stream)
	mux.HandleFunc("GET /api/chart", h.chart)
	mux.HandleFunc("GET /api/tasks", h.tasks)
	mux.HandleFunc("GET /api/health", h.health)
	mux.HandleFunc("GET /report", h.report)
	h.workbenchRoutes(mux)
	h.rulesRoutes(mux)
	return h.authorize(securityHeaders(mux))
}

// authorize requires a token on every request when one is configured (the
// dashboard token or a workbench user's), and passes on who sent it.
func (h *handler) authorize(next http.Handler) http.Handler {
	if h.Access == nil {
		h.Access = &Access{dashboardToken: h.Token}
	}
	if h.Access.Open() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("token")
		if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
			got = strings.TrimPrefix(auth, "Bearer ")
		}
		u, ok := h.Access.Identify(got)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="churnwatch"`)
			http.Error(w, "unauthorized: send the access token as \"Authorization: Bearer <token>\" or ?token=<token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
	})
}

// securityHeaders keeps the pages to their own assets: every script and
// style is served by the binary, nothing from elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// indexPage is the dashboard's page. Its asset addresses carry the token
// the page was opened with, since every request needs it.
var indexPage = template.Must(template.ParseFS(webFS, "web/index.html"))

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	var auth string
	if t := r.URL.Query().Get("token"); t != "" {
		auth = "?token=" + url.QueryEscape(t)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := indexPage.Execute(w, struct{ Auth, TimeZone string }{auth, h.Location.String()}); err != nil {
		h.log.Debug().Err(err).Msg("write dashboard page")
	}
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	rd := h.Health.Check(r.Context())
	if !rd.Ready {
		h.writeJSONStatus(w, http.StatusServiceUnavailable, rd)
		return
	}
	h.writeJSON(w, rd)
}

func (h *handler) writeJSON(w http.ResponseWriter, v any) { h.writeJSONStatus(w, http.StatusOK, v) }

func (h *handler) writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Debug().Err(err).Msg("write response")
	}
}

func (h *handler) fail(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		h.log.Warn().Err(err).Msg("dashboard query failed")
	}
	h.writeJSONStatus(w, status, map[string]string{"error": err.Error()})
}

type signalInfo struct {
	Code     string `json:"code"`
	NameZH   string `json:"zh"`
	NameEN   string `json:"en"`
	Severity string `json:"severity"`
	Kind     string `json:"kind"`
}

func (h *handler) signals(w http.ResponseWriter, _ *http.Request) {
	var out []signalInfo
	for _, s := range signals.Catalogue() {
		out = append(out, signalInfo{Code: s.Code, NameZH: s.NameZH, NameEN: s.NameEN, Severity: string(s.Severity), Kind: string(s.Kind)})
	}
	h.writeJSON(w, out)
}

// filter reads the request's filter, narrowed to the subscribers the user
// sees (Access.Managers).
func (h *handler) filter(w http.ResponseWriter, r *http.Request) (Filter, bool) {
	f := FilterFromQuery(r.URL.Query())
	if err := f.Validate(); err != nil {
		h.fail(w, http.StatusBadRequest, err)
		return f, false
	}
	f.Scope = h.scope(r)
	return f, true
}

// scope is the managers whose subscribers the request's user sees, nil
// meaning every subscriber (an admin, or no token configured).
func (h *handler) scope(r *http.Request) []string {
	return h.Access.Managers(UserFrom(r.Context()))
}

// recent serves the newest stored warnings, for the page to show before
// the live stream adds to them.
func (h *handler) recent(w http.ResponseWriter, r *http.Request) {
	f, ok := h.filter(w, r)
	if !ok {
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	ws, err := h.Reader.RecentWarnings(r.Context(), f, limit)
	if err != nil {
		h.fail(w, http.StatusBadGateway, err)
		return
	}
	out := make([]WarningView, len(ws))
	for i, x := range ws {
		out[i] = View(x, true)
	}
	h.writeJSON(w, out)
}

// stream sends each warning passing the filter as a server-sent event
// ("warning"), after a "ready" event once the hub follows the topic.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	f, ok := h.filter(w, r)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	ch, cancel := h.Hub.Subscribe(f)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	send := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: 2000\n: connected\n\n") {
		return
	}
	keepAlive := time.NewTicker(streamKeepAlive)
	defer keepAlive.Stop()
	live := h.Hub.Live()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-live:
			live = nil
			if !send("event: ready\ndata: {}\n\n") {
				return
			}
		case x := <-ch:
			b, err := json.Marshal(View(x, true))
			if err != nil || !send("event: warning\nid: %s\ndata: %s\n\n", x.WarningID, b) {
				return
			}
		case <-keepAlive.C:
			if !send(": keep-alive\n\n") {
				return
			}
		}
	}
}

type chartResponse struct {
	Chart
	Range string `json:"range"`
}

// chart counts warnings per signal: range 24h and 48h by hour, 7d and 30d
// by local day.
func (h *handler) chart(w http.ResponseWriter, r *http.Request) {
	rng := r.URL.Query().Get("range")
	unit, n := "hour", 24
	switch rng {
	case "", "24h":
		rng = "24h"
	case "48h":
		n = 48
	case "7d":
		unit, n = "day", 7
	case "30d":
		unit, n = "day", 30
	default:
		h.fail(w, http.StatusBadRequest, fmt.Errorf("range %q: want 24h, 48h, 7d or 30d", rng))
		return
	}
	c, err := h.Reader.WarningCounts(r.Context(), h.Clock(), unit, n, h.scope(r))
	if err != nil {
		h.fail(w, http.StatusBadGateway, err)
		return
	}
	h.writeJSON(w, chartResponse{Chart: c, Range: rng})
}

// tasks serves the open tasks per assignee, of the subscribers the user
// sees.
func (h *handler) tasks(w http.ResponseWriter, r *http.Request) {
	loads, err := h.Reader.ManagerLoads(r.Context(), h.Clock(), h.scope(r))
	if err != nil {
		h.fail(w, http.StatusBadGateway, err)
		return
	}
	if loads == nil {
		loads = []ManagerLoad{}
	}
	h.writeJSON(w, loads)
}

type healthResponse struct {
	Readiness      Readiness      `json:"readiness"`
	Now            time.Time      `json:"now"`
	Topics         []TopicCounts  `json:"topics"`
	Lag            []PartitionLag `json:"lag"`
	LagMeasuredAt  *time.Time     `json:"lag_measured_at,omitempty"`
	LagError       string         `json:"lag_error,omitempty"`
	LastWrite      *time.Time     `json:"last_clickhouse_write,omitempty"`
	LastWriteError string         `json:"last_clickhouse_write_error,omitempty"`
	DeadLetters    *uint64        `json:"dead_letters,omitempty"`
	DeadLetters24h *uint64        `json:"dead_letters_24h,omitempty"`
	DailyRun       *DailyRunInfo  `json:"daily_run,omitempty"`
	LatestDaily    *time.Time     `json:"latest_daily_warning,omitempty"`
	Errors         []string       `json:"errors,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// health is the pipeline-health panel: readiness, throughput counters,
// lag, the last ClickHouse write, dead letters and the last daily run.
func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	now := h.Clock()
	out := healthResponse{Readiness: h.Health.Check(r.Context()), Now: now, Topics: h.Metrics.Counts()}
	var lagAt time.Time
	out.Lag, lagAt, out.LagError = h.Metrics.Lag()
	out.LagMeasuredAt = timePtr(lagAt)
	ok, failedAt, failure := h.Metrics.LastWrite()
	out.LastWrite = timePtr(ok)
	if failedAt.After(ok) {
		out.LastWriteError = failure
	}
	if d := h.Metrics.LastDailyRun(); !d.At.IsZero() {
		out.DailyRun = &d
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if total, recent, err := h.Reader.DeadLetterCounts(ctx, now.Add(-24*time.Hour)); err != nil {
		out.Errors = append(out.Errors, err.Error())
	} else {
		out.DeadLetters, out.DeadLetters24h = &total, &recent
	}
	if t, err := h.Reader.LatestDailyWarning(ctx); err != nil {
		out.Errors = append(out.Errors, err.Error())
	} else {
		out.LatestDaily = timePtr(t)
	}
	h.writeJSON(w, out)
}

// report serves a manager's anomaly report: a printable page, or CSV with
// format=csv. The day defaults to yesterday, the manager to the user's own
// name. A manager may read only their own report, a supervisor their team's
// (403 with the reason otherwise).
func (h *handler) report(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u := UserFrom(r.Context())
	manager := strings.TrimSpace(q.Get("manager"))
	if manager == "" && u.Role != config.RoleAdmin {
		manager = u.Name // a manager's own report
	}
	if manager == "" {
		http.Error(w, "manager is required: /report?manager=am-017&date=2026-11-22", http.StatusBadRequest)
		return
	}
	if err := h.Access.CanSeeManager(u, manager); err != nil {
		http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	now := h.Clock()
	day := q.Get("date")
	if day == "" {
		day = now.In(h.Location).AddDate(0, 0, -1).Format(time.DateOnly)
	}
	rep, err := h.Reader.Report(r.Context(), manager, day, now)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch q.Get("format") {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="report-%s-%s.csv"`, safeName(manager), day))
		err = rep.WriteCSV(w)
	case "", "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		err = rep.WriteHTML(w)
	default:
		http.Error(w, "format: want html or csv", http.StatusBadRequest)
		return
	}
	if err != nil {
		h.log.Debug().Err(err).Msg("write report")
	}
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

// zerologPrinter lets promhttp log its errors through zerolog.
type zerologPrinter struct{ log zerolog.Logger }

func (p zerologPrinter) Println(v ...any) { p.log.Warn().Msg(fmt.Sprint(v...)) }
