package panel

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferrycd/ferry/internal/auth"
)

type loginPage struct {
	Name, Next, Error string
}

func (p *Panel) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.opts.Auth.Session(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next"), p.home()), http.StatusSeeOther)
		return
	}
	p.render(w, r, "login", View{Title: "Log in", Data: loginPage{Next: r.URL.Query().Get("next")}})
}

// login checks the form's name and password and starts a session. A login form has no CSRF
// token yet, so one posted from another site is refused by the browser's Sec-Fetch-Site.
func (p *Panel) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	form := loginPage{Name: r.PostFormValue("name"), Next: r.PostFormValue("next")}
	if auth.CrossSite(r) {
		p.fail(w, r, errors.Join(auth.ErrForbidden, errors.New("cross-site login")))
		return
	}
	// The name is the brute-force brake's key, as Argo CD keys it: a client address would be
	// every user's behind a proxy.
	key := strings.ToLower(form.Name)
	if ok, wait := p.logins.Allow(key); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		form.Error = fmt.Sprintf("Too many failed logins for %s; try again in %d s.", form.Name, secs)
		p.renderStatus(w, r, http.StatusTooManyRequests, "login", View{Title: "Log in", Data: form})
		return
	}
	if _, err := p.opts.Auth.Login(w, r, form.Name, r.PostFormValue("password")); err != nil {
		if !errors.Is(err, auth.ErrUnauthorized) {
			p.fail(w, r, err)
			return
		}
		p.logins.Fail(key)
		p.log.WarnContext(r.Context(), "panel login failed", "user", form.Name, "remote", r.RemoteAddr)
		form.Error = err.Error()
		p.renderStatus(w, r, http.StatusUnauthorized, "login", View{Title: "Log in", Data: form})
		return
	}
	p.logins.Succeed(key)
	http.Redirect(w, r, safeNext(form.Next, p.home()), http.StatusSeeOther)
}

func (p *Panel) logout(w http.ResponseWriter, r *http.Request) error {
	if err := p.opts.Auth.Logout(w, r); err != nil {
		return err
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
