// Command bench/view measures how `redraft view` opens a large run: it
// writes a run of -rows rl rows (default 1,000,000) by repeating the
// quickstart's rows with redraft's own shard writer (task and group ids
// made unique per repeat; 4,096-row row groups and 131,072-row shards, a
// run's defaults), then starts `redraft view` on it -repeat times and
// reports, from the process's start:
//
//   - first view: the first page (GET /) answered in full;
//   - the resident set then (VmRSS) and its peak over the whole session
//     (VmHWM, read from /proc/PID/status before the process is stopped);
//   - the filter index ready: a filtered, sorted page (it waits for the
//     index); a deep page (row 900,000, file order); a group in the last
//     shard; a text search (it stops at 1,000 matches).
//
// Beside it, the peer: pyarrow (scripts/python-env.sh's environment) reading
// the same first page, the first 50 rows of the first shard's small columns,
// from interpreter start, with its peak resident set. DuckDB is not in that
// environment; the peer is pyarrow alone.
//
// bench/view/run.sh builds redraft and runs this.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redraft/redraft/export"
)

func main() {
	bin := flag.String("redraft", "", "the redraft binary to measure (required)")
	src := flag.String("quickstart", "out/quickstart/data/rl/train-00000.parquet", "the rl shard whose rows are repeated")
	rows := flag.Int64("rows", 1_000_000, "rows in the run (whole groups)")
	dir := flag.String("dir", "", "write the run here (default: a temporary directory, removed at the end)")
	repeat := flag.Int("repeat", 3, "sessions; the table gives the median and the range")
	python := flag.String("python", "", "a python with pyarrow for the peer (empty: no peer)")
	flag.Parse()
	log.SetFlags(0)
	if *bin == "" {
		log.Fatal("-redraft is required")
	}
	out := *dir
	if out == "" {
		tmp, err := os.MkdirTemp("", "redraft-view-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		out = filepath.Join(tmp, "run")
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t := time.Now()
		m, err := writeRun(*src, out, *rows)
		if err != nil {
			log.Fatal(err)
		}
		var bytes int64
		for _, s := range m.Datasets["rl"].Shards {
			bytes += s.Bytes
		}
		fmt.Fprintf(os.Stderr, "wrote %d rows in %d shards (%.0f MB) in %.1fs\n", m.Datasets["rl"].Rows, len(m.Datasets["rl"].Shards), float64(bytes)/1e6, time.Since(t).Seconds())
	}
	var sessions []session
	for i := range *repeat {
		s, err := measure(*bin, out)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "session %d: %+v\n", i+1, s)
		sessions = append(sessions, s)
	}
	var peers []peer
	if *python != "" {
		for range *repeat {
			p, err := runPeer(*python, out)
			if err != nil {
				log.Fatal(err)
			}
			peers = append(peers, p)
		}
	}
	m, err := export.ReadManifest(out)
	if err != nil {
		log.Fatal(err)
	}
	ds := m.Datasets["rl"]
	fmt.Printf("%s rows, %d shards, %d-row row groups; medians of %d sessions (range)\n\n", commas(ds.Rows), len(ds.Shards), 4096, len(sessions))
	fmt.Println("| tool | measure | time | memory |")
	fmt.Println("|---|---|---:|---:|")
	col := func(f func(session) float64) string { return medRange(sessions, f, "%.0f ms") }
	fmt.Printf("| redraft view | first view (GET / answered, from process start) | %s | RSS %s |\n", col(func(s session) float64 { return s.firstView }), medRange(sessions, func(s session) float64 { return s.rssFirst }, "%.0f MiB"))
	fmt.Printf("| redraft view | filtered and sorted page (waits for the index) | %s | |\n", col(func(s session) float64 { return s.filtered }))
	fmt.Printf("| redraft view | deep page, row 900,000 | %s | |\n", col(func(s session) float64 { return s.deep }))
	fmt.Printf("| redraft view | group in the last shard | %s | |\n", col(func(s session) float64 { return s.group }))
	fmt.Printf("| redraft view | text search (stops at 1,000 matches) | %s | |\n", col(func(s session) float64 { return s.text }))
	fmt.Printf("| redraft view | the whole session | | peak RSS %s |\n", medRange(sessions, func(s session) float64 { return s.rssPeak }, "%.0f MiB"))
	if len(peers) > 0 {
		fmt.Printf("| pyarrow %s | the same first page (50 rows of the small columns, from interpreter start) | %s | peak RSS %s |\n", peers[0].version,
			medRange(peers, func(p peer) float64 { return p.ms }, "%.0f ms"), medRange(peers, func(p peer) float64 { return p.rss }, "%.0f MiB"))
		fmt.Printf("| pyarrow %s | of which reading (after `import pyarrow.parquet`) | %s | |\n", peers[0].version, medRange(peers, func(p peer) float64 { return p.readMS }, "%.0f ms"))
	}
}

// writeRun writes n rl rows (whole groups) made from src's rows, with a
// manifest, as a run writes them.
func writeRun(src, dir string, n int64) (*export.Manifest, error) {
	ctx := context.Background()
	base, err := export.ReadRL(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%w (run the quickstart first: go run ./cmd/redraft run --config configs/quickstart.yaml)", err)
	}
	var groups [][]export.RLRow
	for i := 0; i < len(base); {
		j := i + 1
		for j < len(base) && base[j].GroupID == base[i].GroupID {
			j++
		}
		groups = append(groups, base[i:j])
		i = j
	}
	w, err := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: dir, Dataset: "rl", Split: "train", Schema: export.RLSchema,
		MaxBytes: 256 << 20, MaxRows: 32 * 4096, RowGroupRows: 4096})
	if err != nil {
		return nil, err
	}
	var written int64
fill:
	for rep := 0; written < n; rep++ {
		for _, g := range groups {
			if written+int64(len(g)) > n {
				break fill
			}
			rows := slices.Clone(g)
			for k := range rows {
				task := fmt.Sprintf("%s~r%03d", rows[k].TaskID, rep)
				rows[k].TaskID = task
				rows[k].GroupID = fmt.Sprintf("%s#t%d", task, rows[k].Turn)
			}
			if err := w.WriteGroup(ctx, rows); err != nil {
				return nil, err
			}
			written += int64(len(rows))
		}
	}
	shards, err := w.Flush()
	if err != nil {
		return nil, err
	}
	w.Commit()
	ds := export.DatasetInfo{Schema: export.RLSchema, Shards: shards}
	for _, s := range shards {
		ds.Rows += s.Rows
		ds.Groups += s.Groups
	}
	m := &export.Manifest{Status: export.StatusComplete, Source: "rollouts", Datasets: map[string]export.DatasetInfo{"rl": ds},
		Config: []byte(`{"bench":"view"}`), Started: time.Now(), Finished: time.Now()}
	if err := export.WriteManifest(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

type session struct {
	firstView, filtered, deep, group, text float64 // ms from process start (firstView) or per request
	rssFirst, rssPeak                      float64 // MiB
}

var urlRE = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)

func measure(bin, dir string) (session, error) {
	var s session
	cmd := exec.Command(bin, "view", "--open=false", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return s, err
	}
	cmd.Stderr = io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return s, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return s, fmt.Errorf("redraft view printed no URL: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	base := urlRE.FindString(line)
	if base == "" {
		return s, fmt.Errorf("no URL in %q", line)
	}
	get := func(path, want string) (float64, error) {
		t := time.Now()
		resp, err := http.Get(strings.TrimSuffix(base, "/") + path)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			return 0, fmt.Errorf("GET %s: %s (%.300s)", path, resp.Status, b)
		}
		return float64(time.Since(t).Microseconds()) / 1000, nil
	}
	if _, err := get("/", `data-total="`); err != nil {
		return s, err
	}
	s.firstView = float64(time.Since(start).Microseconds()) / 1000
	s.rssFirst, _ = procStatus(cmd.Process.Pid, "VmRSS")
	if s.filtered, err = get("/rows?ds=rl&rmax=0.5&sort=-advantage", `class="row"`); err != nil {
		return s, err
	}
	if s.deep, err = get("/rows?ds=rl&page=18001", `data-row="900000"`); err != nil {
		return s, err
	}
	if s.group, err = get("/group?ds=rl&row=999998", `class="sample"`); err != nil {
		return s, err
	}
	if s.text, err = get("/rows?ds=rl&q=bolts+of", `class="row"`); err != nil {
		return s, err
	}
	s.rssPeak, err = procStatus(cmd.Process.Pid, "VmHWM")
	return s, err
}

// procStatus reads a memory line of /proc/PID/status, in MiB.
func procStatus(pid int, key string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

type peer struct {
	ms, readMS, rss float64
	version         string
}

// peerScript reads what the first page shows: the first 50 rows of the
// first shard's small columns.
const peerScript = `
import json, resource, sys, time
t0 = time.perf_counter()
import pyarrow, pyarrow.parquet as pq
t1 = time.perf_counter()
m = json.load(open(sys.argv[1] + "/manifest.json"))
f = pq.ParquetFile(sys.argv[1] + "/" + m["datasets"]["rl"]["shards"][0]["path"])
cols = ["task_id", "group_id", "sample_index", "turn", "data_source", "model", "reward", "advantage", "correct",
        "transition", "finish_reason", "error", "reward_reason", "reward_components", "judge_flagged", "judge_scores",
        "response", "extracted_answer", "off_policy"]
rows = f.read_row_group(0, columns=cols).slice(0, 50).to_pylist()
assert len(rows) == 50
t2 = time.perf_counter()
print(json.dumps({"read_ms": (t2 - t1) * 1000, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "version": pyarrow.__version__}))
`

func runPeer(python, dir string) (peer, error) {
	t := time.Now()
	out, err := exec.Command(python, "-c", peerScript, dir).Output()
	if err != nil {
		return peer{}, fmt.Errorf("pyarrow peer: %v", err)
	}
	p := peer{ms: float64(time.Since(t).Microseconds()) / 1000}
	var rss float64
	var r struct {
		ReadMS  float64 `json:"read_ms"`
		RSSKB   float64 `json:"rss_kb"`
		Version string  `json:"version"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return p, err
	}
	rss = r.RSSKB / 1024
	p.readMS, p.rss, p.version = r.ReadMS, rss, r.Version
	return p, nil
}

func medRange[T any](xs []T, f func(T) float64, format string) string {
	if len(xs) == 0 {
		return ""
	}
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	med := fmt.Sprintf(format, v[len(v)/2])
	if len(v) == 1 {
		return med
	}
	num := func(x float64) string { return strings.Fields(fmt.Sprintf(format, x))[0] }
	return fmt.Sprintf("%s (%s-%s)", med, num(v[0]), num(v[len(v)-1]))
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
