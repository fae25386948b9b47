package ops_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"churnwatch/pipeline/testenv"
)

// TestWorkbenchInChromium opens the subscriber 360 and the scorecard pages in
// headless Chromium, as a manager: the profile, the usage chart, the
// warnings and the task notes are drawn; another manager's subscriber shows
// the refusal; the scorecard ranks the managers and lists the open tasks the
// user sees (a supervisor only their team's). The screenshots go to
// docs/img (the README shows them).
func TestWorkbenchInChromium(t *testing.T) {
	w := workbenchWarehouse(t)
	loadSubscriberFacts(t, w)
	loadScopeFacts(t, w)
	cfg := workbenchConfig(t)
	srv := workbenchServer(t, w, cfg, nil)

	ctx := testenv.Chromium(t, 1300, 1400)
	var mu sync.Mutex
	var exceptions []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdpruntime.EventExceptionThrown); ok {
			mu.Lock()
			defer mu.Unlock()
			exceptions = append(exceptions, e.ExceptionDetails.Text)
		}
	}); err != nil {
		t.Fatal(err)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "docs", "img", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}

	manager := "am-017-token-0123456789"
	err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/subscriber?token="+manager+"&msisdn="+subA),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="`+subA+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#usage-chart svg rect.calls`)), chromedp.WaitVisible(chromedp.CSS(`#score-chart svg path`)))
	if err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{
		"#profile":      "闽江科技",
		"#me":           "am-017 (manager",
		"#sub-warnings": "离网预警",
		"#sub-tasks":    "visited; offered the family plan",
		"#bills":        "540.00",
	} {
		if got := text(sel); !strings.Contains(got, want) {
			t.Errorf("%s shows %q, want %q in it", sel, got, want)
		}
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#usage-chart svg circle.hotline").length`)); err != nil || n != 1 {
		t.Errorf("hotline days drawn: %d (%v), want 1", n, err)
	}
	shot("subscriber-360.png")

	// Another manager's subscriber: the refusal, no data.
	err = chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/subscriber?token=am-021-token-0123456789&msisdn="+subA),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="error"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := text("#error"); !strings.Contains(got, "sees only their own subscribers") {
		t.Errorf("refusal shows %q", got)
	}
	if hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("profile").hidden`)); !hidden {
		t.Error("the profile of a refused subscriber is visible")
	}

	err = chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/scorecard?token="+cfg.HTTP.Token+"&month=2026-11"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="2026-11"][data-tasks="loaded"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := text("#scorecard tbody"); !strings.Contains(got, "am-017") || !strings.Contains(got, "fz-am") || !strings.Contains(got, "fuzhou-linchuan") {
		t.Errorf("scorecard shows %q", got)
	}
	if got := text("#open-tasks tbody"); !strings.Contains(got, subA) || !strings.Contains(got, subB) || !strings.Contains(strings.ToLower(got), "overdue") {
		t.Errorf("the admin's open tasks show %q, want both subscribers' and T-B1 overdue", got)
	}
	shot("scorecard.png")

	// A supervisor: their team's rows and open tasks only.
	err = chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/scorecard?token="+tokSV001+"&month=2026-11"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="2026-11"][data-tasks="loaded"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := text("#open-tasks tbody"); !strings.Contains(got, subA) || strings.Contains(got, subB) {
		t.Errorf("the supervisor's open tasks show %q, want %s's only", got, subA)
	}
	if got := text("#open-scope"); !strings.Contains(got, "team 团队 fz-am") {
		t.Errorf("open tasks scope: %q", got)
	}
	if got := text("#scorecard tbody"); strings.Contains(got, "am-021") {
		t.Errorf("the supervisor's scorecard shows another team's manager: %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(exceptions) > 0 {
		t.Errorf("uncaught exceptions on the pages: %q", exceptions)
	}
}
