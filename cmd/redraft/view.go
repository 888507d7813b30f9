package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/redraft/redraft/view"
)

const viewAbout = `Serves a browser for the output directory DIR (a run, a splice, a merged
sharded run, or one .parquet shard) on a local HTTP server, 127.0.0.1 on a free port unless --addr
says otherwise, prints its URL to stdout and, with --open, opens it in the desktop's browser. Pages:
the rows of each dataset with filters and sorting, a group (the prompt once, the samples by
advantage with rewards, components, answers and grades), a trajectory (each message as a chat,
trained and masked spans coloured by segment role) and the tokens (labels, logprobs as heat). It
reads only the row groups a page shows; filters use an index of a few small columns built in the
background. Each request is logged to stderr. Ctrl+C stops it. See docs/view.md.`

// redraft view [--addr HOST:PORT] [--open=false] [--tokenizer FILE] DIR
func cmdView(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("view", "[flags] DIR", viewAbout, stdout)
	addr := fs.String("addr", "127.0.0.1:0", "listen on `HOST:PORT` (port 0: a free one)")
	open := fs.Bool("open", true, "open the URL in the desktop's browser (when there is one)")
	tok := fs.String("tokenizer", "", "decode token ids with this tokenizer.json `FILE` (default: the one the shards name, when it is there)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want one output directory: redraft view [flags] DIR"}
	}
	// A browser's memory is its filter index, a few tens of bytes a row:
	// collect garbage at half the usual heap growth so that the peak stays
	// near it (GOGC, when set, decides instead).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	run, err := view.Open(ctx, fs.Arg(0), view.Options{Tokenizer: *tok})
	if err != nil {
		return err
	}
	srv, err := view.NewServer(run)
	if err != nil {
		return err
	}
	srv.Log = func(method, url string, status int, d time.Duration) {
		fmt.Fprintf(stderr, "%s %s %s %d %s\n", time.Now().Format("15:04:05"), method, url, status, d.Round(time.Microsecond))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		fmt.Fprintf(stderr, "redraft view: listening on %s, which is not a loopback address: anyone who can reach it can read the data\n", ln.Addr())
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(stdout, "redraft view: %s at %s (Ctrl+C stops)\n", fs.Arg(0), url)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	if *open {
		openBrowser(url, stderr)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// openBrowser asks the desktop to open url; without a desktop (no display,
// no opener) it does nothing: the URL is printed.
func openBrowser(url string, stderr io.Writer) {
	var name string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name = "explorer"
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		name = "xdg-open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return
	}
	cmd := exec.Command(path, url)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "redraft view: %s: %v\n", name, err)
		return
	}
	go cmd.Wait()
}
