package view

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

// PageRows is the number of rows a list page shows.
const PageRows = 50

// Server serves a run's pages. Every request is passed to Log (when set)
// after it is answered.
type Server struct {
	run  *Run
	tmpl map[string]*template.Template
	// Log is told of every request: method, URL, status, duration.
	Log func(method, url string, status int, d time.Duration)
}

// NewServer prepares the pages of an opened run.
func NewServer(run *Run) (*Server, error) {
	s := &Server{run: run, tmpl: map[string]*template.Template{}}
	pages, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", p)
		if err != nil {
			return nil, err
		}
		s.tmpl[name] = t
	}
	return s, nil
}

// contentSecurityPolicy lets a page load only from the server that served
// it: no script, style, font, image or connection elsewhere. Inline style
// attributes carry the colours of segments and tokens.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.serve(sw, r)
	if s.Log != nil {
		s.Log(r.Method, r.URL.String(), sw.status, time.Since(start))
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
		return
	}
	// A page on another site cannot reach this server through a name that
	// resolves to 127.0.0.1 (DNS rebinding): only a loopback host is served.
	if host, _, err := net.SplitHostPort(r.Host); err == nil && !loopbackName(host) && isLoopbackAddr(r.Context()) {
		http.Error(w, "this server answers only requests to 127.0.0.1 or localhost", http.StatusForbidden)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/static/"):
		s.static(w, r)
	case r.URL.Path == "/" || r.URL.Path == "/rows":
		s.page(w, r, "rows", s.rowsPage)
	case r.URL.Path == "/group":
		s.page(w, r, "group", s.groupPage)
	case r.URL.Path == "/trajectory":
		s.page(w, r, "trajectory", s.trajectoryPage)
	case r.URL.Path == "/tokens":
		s.page(w, r, "tokens", s.tokensPage)
	case r.URL.Path == "/row":
		s.page(w, r, "row", s.rowPage)
	case r.URL.Path == "/status":
		s.status(w)
	default:
		http.NotFound(w, r)
	}
}

func loopbackName(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackAddr says whether the connection came in on a loopback address
// (the check above applies to servers bound there).
func isLoopbackAddr(ctx context.Context) bool {
	a, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	return err == nil && loopbackName(host)
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	b, err := assets.ReadFile(name)
	if err != nil || strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// status is the index progress of each dataset as JSON, for the page's
// script.
func (s *Server) status(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	var b strings.Builder
	b.WriteString("{")
	for i, d := range s.run.Datasets {
		n, done, err := d.IndexProgress()
		if i > 0 {
			b.WriteString(",")
		}
		e := ""
		if err != nil {
			e = err.Error()
		}
		fmt.Fprintf(&b, "%q:{\"rows\":%d,\"indexed\":%d,\"done\":%v,\"error\":%q}", d.Name, d.Rows, n, done, e)
	}
	b.WriteString("}")
	w.Write([]byte(b.String()))
}

// httpError is an error with the status it answers.
type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// layout is what every page shows around its content.
type layout struct {
	Title    string
	Run      *Run
	Dataset  *Dataset
	Datasets []dsLink
	Back     string // the list the page was opened from
	Content  any
}

type dsLink struct {
	Name, Schema, URL string
	Rows              int64
	Current           bool
	Indexed           int64
	IndexDone         bool
}

func (s *Server) page(w http.ResponseWriter, r *http.Request, name string, build func(ctx context.Context, q url.Values, l *layout) error) {
	q := r.URL.Query()
	l := &layout{Run: s.run, Back: "/rows?" + q.Get("from")}
	if q.Get("from") == "" {
		l.Back = ""
	}
	dsName := q.Get("ds")
	if dsName == "" {
		dsName = s.run.Datasets[0].Name
	}
	l.Dataset = s.run.Dataset(dsName)
	for _, d := range s.run.Datasets {
		n, done, _ := d.IndexProgress()
		l.Datasets = append(l.Datasets, dsLink{Name: d.Name, Schema: d.Schema, Rows: d.Rows, URL: "/rows?ds=" + url.QueryEscape(d.Name),
			Current: d == l.Dataset, Indexed: n, IndexDone: done})
	}
	var err error
	if l.Dataset == nil {
		err = httpError{http.StatusNotFound, fmt.Sprintf("no dataset %q in this run", dsName)}
	} else {
		err = build(r.Context(), q, l)
	}
	var buf bytes.Buffer
	if err == nil {
		err = s.tmpl[name].Execute(&buf, l)
	}
	if err != nil {
		code := http.StatusInternalServerError
		var he httpError
		if errors.As(err, &he) {
			code = he.code
		}
		if errors.Is(err, context.Canceled) {
			return
		}
		buf.Reset()
		l.Title, l.Content = "error", err.Error()
		if terr := s.tmpl["error"].Execute(&buf, l); terr != nil {
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		w.Write(buf.Bytes())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// rowParam reads the row= parameter.
func rowParam(q url.Values, d *Dataset) (int64, error) {
	row, err := strconv.ParseInt(q.Get("row"), 10, 64)
	if err != nil || row < 0 || row >= d.Rows {
		return 0, badRequest("row=%q: want a row number from 0 to %d", q.Get("row"), d.Rows-1)
	}
	return row, nil
}
