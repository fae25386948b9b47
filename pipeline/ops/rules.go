package ops

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/warehouse"
)

// reloadResponse answers POST /-/reload.
type reloadResponse struct {
	RuleVersion string `json:"rule_version"`
	Previous    string `json:"previous"`
	Changed     bool   `json:"changed"`
}

// reload reloads the rules file: 200 with the versions when the new rules
// are in effect, 400 with the reason when the file was refused (the rules
// in effect stay).
func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	if u := UserFrom(r.Context()); u.Role != config.RoleAdmin {
		h.fail(w, http.StatusForbidden, errors.New("only the dashboard token (CHURNWATCH_HTTP_TOKEN) may reload the rules, not a workbench user's"))
		return
	}
	if h.Reload == nil {
		h.fail(w, http.StatusNotFound, errors.New("this process does not reload rules"))
		return
	}
	previous, version, err := h.Reload()
	if err != nil {
		h.log.Error().Err(err).Str("trigger", "POST /-/reload").Msg("rules reload refused")
		h.fail(w, http.StatusBadRequest, err)
		return
	}
	h.log.Info().Str("trigger", "POST /-/reload").Str("previous", previous).Str("rule_version", version).
		Bool("changed", previous != version).Msg("rules reloaded")
	h.writeJSON(w, reloadResponse{RuleVersion: version, Previous: previous, Changed: previous != version})
}

// ruleVersion tells the rule version in effect.
func (h *handler) ruleVersion(w http.ResponseWriter, _ *http.Request) {
	if h.RuleVersion == nil {
		h.fail(w, http.StatusNotFound, errors.New("this process has no rules in effect"))
		return
	}
	h.writeJSON(w, map[string]string{"rule_version": h.RuleVersion()})
}

// outcomesPage is the signal-quality page: the signal_outcomes view.
var outcomesPage = template.Must(template.ParseFS(webFS, "web/outcomes.html"))

// rulesRoutes adds the endpoints of the rules and their outcomes: reload,
// the version in effect, and the signal-quality page with its data.
func (h *handler) rulesRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /-/reload", h.reload)
	mux.HandleFunc("GET /api/rules", h.ruleVersion)
	mux.HandleFunc("GET /outcomes", h.outcomesPage)
	mux.HandleFunc("GET /api/outcomes", h.outcomes)
}

func (h *handler) outcomesPage(w http.ResponseWriter, r *http.Request) {
	var auth string
	if t := r.URL.Query().Get("token"); t != "" {
		auth = "?token=" + url.QueryEscape(t)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := outcomesPage.Execute(w, struct{ Auth string }{auth}); err != nil {
		h.log.Debug().Err(err).Msg("write outcomes page")
	}
}

// outcomesResponse is the signal-quality table with the version in effect,
// so the page can mark the rows of the current rules.
type outcomesResponse struct {
	RuleVersion string                    `json:"rule_version,omitempty"`
	Signals     []warehouse.SignalOutcome `json:"signals"`
}

// outcomes serves the signal_outcomes view.
func (h *handler) outcomes(w http.ResponseWriter, r *http.Request) {
	rows, err := h.Reader.SignalOutcomes(r.Context())
	if err != nil {
		h.fail(w, http.StatusBadGateway, err)
		return
	}
	out := outcomesResponse{Signals: rows}
	if out.Signals == nil {
		out.Signals = []warehouse.SignalOutcome{}
	}
	if h.RuleVersion != nil {
		out.RuleVersion = h.RuleVersion()
	}
	h.writeJSON(w, out)
}
