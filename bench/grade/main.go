// Command grade builds benchmark responses from the bundled data and times
// redraft's math grader on them. bench/grade/run.sh drives it together
// with Math-Verify and prints one comparison table.
//
//	grade build  -n 10000 -size 1500 -out responses.jsonl
//	grade time   -in responses.jsonl -procs 1 -out go.json
//	grade public -in public_cases.jsonl -out go_public.json
//	grade sizes  -out sizes.json
//	grade report -go go.json -gopar gopar.json -gopub go_public.json -mv mv.json -sizes sizes.json
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redraft/redraft/rewards/mathgrade"
)

const (
	math500Path = "rewards/mathgrade/testdata/math500_test.jsonl"
	gsm8kPath   = "testdata/gsm8k/example_model_solutions.jsonl"
)

// Item is one benchmark response with its reference answer.
type Item struct {
	Response string `json:"response"`
	Gold     string `json:"gold"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grade build|time|public|sizes|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = cmdBuild(os.Args[2:])
	case "time":
		err = cmdTime(os.Args[2:])
	case "public":
		err = cmdPublic(os.Args[2:])
	case "sizes":
		err = cmdSizes(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grade:", err)
		os.Exit(1)
	}
}

func readJSONL[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

type mathRow struct {
	Solution string `json:"solution"`
	Answer   string `json:"answer"`
}

type gsmSolution struct {
	Solution string `json:"solution"`
}

type gsmRow struct {
	Question    string      `json:"question"`
	GroundTruth string      `json:"ground_truth"`
	FT175B      gsmSolution `json:"175b_finetuning"`
}

// build makes n responses of about size bytes: reasoning text from real
// solutions followed by one real solution that ends in its stated answer.
// Three in four come from MATH-500 (answer in \boxed{}), one in four from
// GSM8K (answer on an "A:" line, gold the full reference solution); every
// other response is graded against another problem's answer, so half are
// wrong.
func build(n, size int) ([]Item, error) {
	math, err := readJSONL[mathRow](math500Path)
	if err != nil {
		return nil, err
	}
	gsm, err := readJSONL[gsmRow](gsm8kPath)
	if err != nil {
		return nil, err
	}
	items := make([]Item, n)
	for i := range items {
		var final, gold, other string
		if i%4 == 3 {
			r := gsm[(i/4)%len(gsm)]
			final = r.Question + "\n\n" + r.FT175B.Solution
			gold = r.GroundTruth
			other = gsm[(i/4+1)%len(gsm)].GroundTruth
		} else {
			r := math[i%len(math)]
			final = r.Solution
			gold = r.Answer
			other = math[(i+1)%len(math)].Answer
		}
		var sb strings.Builder
		for k := 1; sb.Len()+len(final) < size; k++ {
			filler := math[(i*7+k)%len(math)].Solution
			// Reasoning before the final answer states no answer itself.
			filler = strings.ReplaceAll(filler, `\boxed`, `\mathbf`)
			sb.WriteString(filler)
			sb.WriteString("\n\n")
		}
		sb.WriteString(final)
		resp := sb.String()
		if len(resp) > size {
			resp = resp[len(resp)-size:]
		}
		if i%2 == 1 {
			gold = other
		}
		items[i] = Item{Response: resp, Gold: gold}
	}
	return items, nil
}

func cmdBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	n := fs.Int("n", 10000, "number of responses")
	size := fs.Int("size", 1500, "approximate bytes per response")
	out := fs.String("out", "", "output JSONL file")
	fs.Parse(args)
	items, err := build(*n, *size)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// Timing is one throughput measurement.
type Timing struct {
	Procs    int     `json:"procs"`
	N        int     `json:"n"`
	Bytes    int     `json:"avg_bytes"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_sec"`
	Correct  int     `json:"correct"`
	Verdicts []bool  `json:"verdicts,omitempty"`
}

// timeGrade grades items on procs goroutines, repeating the pass until at
// least minDur has elapsed, and returns responses per second.
func timeGrade(items []Item, procs int, minDur time.Duration) Timing {
	if procs <= 0 {
		procs = runtime.NumCPU()
	}
	g := mathgrade.New(mathgrade.Options{})
	verdicts := make([]bool, len(items))
	bytes := 0
	for _, it := range items {
		bytes += len(it.Response)
	}
	pass := func() {
		var wg sync.WaitGroup
		for p := 0; p < procs; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				for i := p; i < len(items); i += procs {
					verdicts[i] = g.Grade(items[i].Response, items[i].Gold).Correct
				}
			}(p)
		}
		wg.Wait()
	}
	pass() // warm up
	start := time.Now()
	done := 0
	for done == 0 || time.Since(start) < minDur {
		pass()
		done += len(items)
	}
	el := time.Since(start).Seconds()
	t := Timing{Procs: procs, N: len(items), Bytes: bytes / max(len(items), 1), Seconds: el, PerSec: float64(done) / el}
	for _, v := range verdicts {
		if v {
			t.Correct++
		}
	}
	t.Verdicts = verdicts
	return t
}

func cmdTime(args []string) error {
	fs := flag.NewFlagSet("time", flag.ExitOnError)
	in := fs.String("in", "", "responses JSONL")
	procs := fs.Int("procs", 1, "goroutines (0: one per CPU)")
	out := fs.String("out", "", "output JSON")
	fs.Parse(args)
	items, err := readJSONL[Item](*in)
	if err != nil {
		return err
	}
	return writeJSON(*out, timeGrade(items, *procs, 2*time.Second))
}

func cmdSizes(args []string) error {
	fs := flag.NewFlagSet("sizes", flag.ExitOnError)
	out := fs.String("out", "", "output JSON")
	fs.Parse(args)
	var res []Timing
	for _, size := range []int{1500, 8 << 10, 32 << 10, 100 << 10} {
		items, err := build(2000, size)
		if err != nil {
			return err
		}
		t := timeGrade(items, 1, 2*time.Second)
		t.Verdicts = nil
		res = append(res, t)
	}
	return writeJSON(*out, res)
}

type publicCase struct {
	Gold       *string `json:"gold"`
	Prediction *string `json:"prediction"`
	Expected   bool    `json:"expected"`
}

// Agreement is how many public cases a grader decides as asserted.
type Agreement struct {
	Agree int `json:"agree"`
	Total int `json:"total"`
}

func cmdPublic(args []string) error {
	fs := flag.NewFlagSet("public", flag.ExitOnError)
	in := fs.String("in", "", "public cases JSONL")
	out := fs.String("out", "", "output JSON")
	fs.Parse(args)
	cases, err := readJSONL[publicCase](*in)
	if err != nil {
		return err
	}
	g := mathgrade.New(mathgrade.Options{})
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	a := Agreement{Total: len(cases)}
	for _, c := range cases {
		if g.Grade(deref(c.Prediction), deref(c.Gold)).Correct == c.Expected {
			a.Agree++
		}
	}
	return writeJSON(*out, a)
}

type mvResult struct {
	Timing
	Public  Agreement `json:"public"`
	Version string    `json:"version"`
	Errors  int       `json:"errors"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	goPath := fs.String("go", "", "redraft timing, 1 goroutine")
	goParPath := fs.String("gopar", "", "redraft timing, all CPUs")
	goPubPath := fs.String("gopub", "", "redraft public-case agreement")
	mvPath := fs.String("mv", "", "Math-Verify results")
	sizesPath := fs.String("sizes", "", "redraft timings by response size")
	fs.Parse(args)
	var g1, gp Timing
	var gpub Agreement
	var mv mvResult
	var sizes []Timing
	for _, r := range []struct {
		p string
		v any
	}{{*goPath, &g1}, {*goParPath, &gp}, {*goPubPath, &gpub}, {*mvPath, &mv}, {*sizesPath, &sizes}} {
		if err := readJSON(r.p, r.v); err != nil {
			return err
		}
	}
	agreeVerdicts := 0
	for i := range g1.Verdicts {
		if i < len(mv.Verdicts) && g1.Verdicts[i] == mv.Verdicts[i] {
			agreeVerdicts++
		}
	}
	pct := func(a Agreement) string {
		return fmt.Sprintf("%d/%d (%.1f%%)", a.Agree, a.Total, 100*float64(a.Agree)/float64(max(a.Total, 1)))
	}
	fmt.Printf("Math answer grading: %d responses of ~%d bytes (MATH-500 and GSM8K answers in reasoning text); %d CPUs\n\n",
		g1.N, g1.Bytes, runtime.NumCPU())
	fmt.Printf("%-34s %14s %14s %10s %18s\n", "grader", "responses/s", "x Math-Verify", "correct", "public cases")
	fmt.Printf("%-34s %14.0f %14.1f %10d %18s\n", "redraft mathgrade (Go, 1 goroutine)", g1.PerSec, g1.PerSec/mv.PerSec, g1.Correct, pct(gpub))
	fmt.Printf("%-34s %14.0f %14.1f %10d %18s\n", fmt.Sprintf("redraft mathgrade (Go, %d goroutines)", gp.Procs), gp.PerSec, gp.PerSec/mv.PerSec, gp.Correct, pct(gpub))
	fmt.Printf("%-34s %14.1f %14.1f %10d %18s\n", "Math-Verify "+mv.Version+" (Python, 1 process)", mv.PerSec, 1.0, mv.Correct, pct(mv.Public))
	fmt.Printf("%-34s %14s %14s %10s %18s\n", "verdicts agreeing on the responses", "", "", fmt.Sprintf("%d/%d", agreeVerdicts, g1.N), "")
	fmt.Printf("%-34s %14s\n", "redraft, 1 goroutine, by size:", "")
	for _, s := range sizes {
		fmt.Printf("%-34s %14.0f %14s %10s %18s\n", fmt.Sprintf("  %.1f KB per response", float64(s.Bytes)/1000), s.PerSec, fmt.Sprintf("%.0f MB/s", s.PerSec*float64(s.Bytes)/1e6), "", "")
	}
	if mv.Errors > 0 {
		fmt.Printf("\nMath-Verify raised or timed out on %d responses (counted as not correct).\n", mv.Errors)
	}
	return nil
}
