package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browserStep bounds one step of a browser test: a navigation, or a wait for the page to
// show something. It only ends a hung test; it is not a timing assertion.
const browserStep = 60 * time.Second

// browserLife bounds the whole browser session of a test, so a hung browser cannot hold the
// test until go test's own timeout.
const browserLife = 5 * time.Minute

// screenshotDir is where the browser tests leave a picture of each page they visit
// (git-ignored), for a person to look at; nothing compares them.
const screenshotDir = "testdata/screenshots"

// chromium returns the Chromium the browser tests drive: $FERRY_CHROMIUM (`make test` sets
// it from hack/chromium.sh), else Debian's /usr/bin/chromium. Without either the test is
// skipped, saying how to get one.
func chromium(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("FERRY_CHROMIUM"); path != "" {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("FERRY_CHROMIUM=%s: %v; run hack/chromium.sh", path, err)
		}
		return path
	}
	const debian = "/usr/bin/chromium"
	if _, err := os.Stat(debian); err != nil {
		t.Skipf(`no Chromium: FERRY_CHROMIUM is not set and %s is missing; run "make test", or set FERRY_CHROMIUM to the output of hack/chromium.sh`, debian)
	}
	return debian
}

// newBrowser starts a headless Chromium that lives until the test ends, and returns its
// first tab's context.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests may run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.WindowSize(1366, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	life, cancelLife := context.WithTimeout(t.Context(), browserLife)
	actx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
		cancelLife()
	})
	// The first action starts the browser and binds its life to the context it is given, so
	// it gets ctx itself; each step then runs with a deadline of its own, derived from ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// tab is a browser tab on the panel at base.
type tab struct {
	ctx  context.Context
	base string
}

// newUserTab opens a tab in a browser context of its own, so the user logged in there
// shares no cookie with another tab's.
func newUserTab(t *testing.T, browser context.Context, base string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Like the browser, a tab lives as long as the context of its first action.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &tab{ctx: ctx, base: base}
}

// newTab opens another tab beside p, in its browser context: the same user, with a
// viewport or media emulation of its own. It closes when the test ends.
func (p *tab) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &tab{ctx: ctx, base: p.base}
}

// do runs steps within browserStep, failing the test with what on error.
func (p *tab) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// run runs one action returning a value, within browserStep.
func run[T any](t *testing.T, p *tab, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// open navigates to path on the panel and waits until sel is visible.
func (p *tab) open(t *testing.T, path, sel string) {
	t.Helper()
	p.do(t, "open "+path, chromedp.Navigate(p.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](t *testing.T, p *tab, expr string) T {
	t.Helper()
	return run(t, p, "evaluate "+expr, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// until polls the JavaScript predicate expr until it is true, and fails the test with what,
// and the value of show at that moment, when it never is.
func (p *tab) until(t *testing.T, what, expr, show string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserStep+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(browserStep)))
	if err == nil {
		return
	}
	got := "?"
	if show != "" {
		sctx, scancel := context.WithTimeout(p.ctx, 5*time.Second)
		defer scancel()
		if v, serr := chromedp.Run(sctx, chromedp.Evaluate[string](show)); serr == nil {
			got = v
		}
	}
	if errors.Is(err, chromedp.ErrPollingTimeout) {
		t.Fatalf("never: %s (page %s: %s)", what, p.location(), got)
	}
	t.Fatalf("waiting for %s: %v (page %s: %s)", what, err, p.location(), got)
}

// location is the tab's current URL, for failure messages.
func (p *tab) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

// textOf is a JavaScript expression giving the whitespace-collapsed text of the first
// element sel matches, or "(none)".
func textOf(sel string) string {
	return fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.textContent.replace(/\s+/g, " ").trim() : "(none)"; })()`, js(sel))
}

// text returns the text of the first element sel matches, "(none)" when there is none.
func (p *tab) text(t *testing.T, sel string) string {
	t.Helper()
	return eval[string](t, p, textOf(sel))
}

// waitText waits until the first element sel matches contains want in its text.
func (p *tab) waitText(t *testing.T, sel, want string) {
	t.Helper()
	p.until(t, fmt.Sprintf("%s shows %q", sel, want),
		fmt.Sprintf(`%s.includes(%s)`, textOf(sel), js(want)), textOf(sel))
}

// waitTextStarts waits until the text of the first element sel matches starts with want.
func (p *tab) waitTextStarts(t *testing.T, sel, want string) {
	t.Helper()
	p.until(t, fmt.Sprintf("%s starts with %q", sel, want),
		fmt.Sprintf(`%s.startsWith(%s)`, textOf(sel), js(want)), textOf(sel))
}

// waitPresent waits until sel matches an element.
func (p *tab) waitPresent(t *testing.T, sel string) {
	t.Helper()
	p.until(t, sel+" on the page", fmt.Sprintf(`document.querySelector(%s) !== null`, js(sel)),
		`document.body ? document.body.innerText.slice(0, 300) : ""`)
}

// count returns how many elements sel matches.
func (p *tab) count(t *testing.T, sel string) int {
	t.Helper()
	return eval[int](t, p, fmt.Sprintf(`document.querySelectorAll(%s).length`, js(sel)))
}

// markPage waits until the page's live event stream is open, then puts a mark on its window
// that a reload would wipe: checkNotReloaded then tells a change that came live from one that
// came with a new page.
func (p *tab) markPage(t *testing.T) {
	t.Helper()
	p.until(t, "the live event stream open", `!!window.ferryLive && window.ferryLive.source.readyState === 1`,
		`String(window.ferryLive && window.ferryLive.source.readyState)`)
	p.do(t, "mark the page", chromedp.Evaluate[chromedp.Void](`window.__ferryMark = 1`))
}

// checkNotReloaded fails the test if the page lost the mark markPage put on it.
func (p *tab) checkNotReloaded(t *testing.T, what string) {
	t.Helper()
	if !eval[bool](t, p, `window.__ferryMark === 1`) {
		t.Errorf("%s by reloading the page, want it swapped in live", what)
	}
}

// submit clicks the button sel matches, which submits a form, and waits until the page the
// form's answer leads to has loaded and shows wait.
func (p *tab) submit(t *testing.T, sel, wait string) {
	t.Helper()
	loaded := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))
	p.do(t, "submit "+sel, discard(loaded), chromedp.WaitVisible(chromedp.CSS(wait)))
}

// discard makes an action with a value one that Do can run.
func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// screenshot saves a full-page PNG of the tab as screenshotDir/NAME.png.
func (p *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	// Quality 100 is what makes FullScreenshot take a PNG; below it takes a JPEG.
	img := run(t, p, "screenshot "+name, chromedp.FullScreenshot(100))
	if !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), img, 0o644); err != nil {
		t.Fatal(err)
	}
}

// emulateDark makes the tab's pages match prefers-color-scheme: dark, as a browser on a
// system in dark mode does.
func (p *tab) emulateDark(t *testing.T) {
	t.Helper()
	p.do(t, "emulate dark mode", chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
}

// fetchStatus sends a request from the page, as the page's own script would, with the
// page's CSRF token, and returns the answer's status.
func (p *tab) fetchStatus(t *testing.T, method, path string) int {
	t.Helper()
	return eval[int](t, p, fmt.Sprintf(`fetch(%s, {method: %s, redirect: "manual", credentials: "same-origin",
		headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}}).then(r => r.status)`,
		js(path), js(method)))
}

// apiCall sends a JSON request with an API key to the server's API and decodes the answer.
func apiCall(t *testing.T, base, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	status, out, _ := keyCall(t, method, base+path, key, raw)
	return status, out
}
