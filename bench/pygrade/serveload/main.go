// Command serveload drives a running redraft serve with OpenRLHF-shaped
// batch requests built from bench/pygrade's corpus and prints one JSON
// line: responses/s, requests/s and request latency percentiles.
//
//	serveload -url http://127.0.0.1:PORT/get_reward -corpus corpus.jsonl -batch 256 -clients 4 -duration 5s
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type item struct {
	Response string `json:"response"`
	Gold     string `json:"gold"`
}

func main() {
	url := flag.String("url", "", "the /get_reward URL")
	corpus := flag.String("corpus", "", "bench/pygrade corpus JSONL")
	batch := flag.Int("batch", 256, "queries per request")
	clients := flag.Int("clients", 4, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "how long to send")
	flag.Parse()
	items, err := read(*corpus)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serveload:", err)
		os.Exit(1)
	}
	// Pre-encode the request bodies: the client's JSON work is not timed.
	var bodies [][]byte
	for i := 0; i+*batch <= len(items); i += *batch {
		q, l, p := make([]string, *batch), make([]string, *batch), make([]string, *batch)
		for k := range q {
			q[k], l[k] = items[i+k].Response, items[i+k].Gold
		}
		b, _ := json.Marshal(map[string]any{"query": q, "prompts": p, "labels": l})
		bodies = append(bodies, b)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}, Timeout: time.Minute}
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	start := time.Now()
	stop := start.Add(*duration)
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for k := c; time.Now().Before(stop); k += *clients {
				t0 := time.Now()
				resp, err := client.Post(*url, "application/json", bytes.NewReader(bodies[k%len(bodies)]))
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				if ok {
					lat = append(lat, d)
				} else {
					failed++
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"batch": *batch, "clients": *clients, "requests": len(lat),
		"failed": failed, "seconds": secs, "req_per_sec": float64(len(lat)) / secs,
		"per_sec": float64(len(lat)**batch) / secs, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1)})
}

func read(path string) ([]item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []item
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var it item
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, sc.Err()
}
