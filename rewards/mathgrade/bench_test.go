package mathgrade

import (
	"strings"
	"testing"
)

type mathRow struct {
	Problem  string `json:"problem"`
	Solution string `json:"solution"`
	Answer   string `json:"answer"`
}

// benchResponse is a response of about size bytes built from real data: a
// MATH-500 solution (reasoning ending in its \boxed answer) preceded by
// reasoning text from other solutions.
type benchResponse struct{ resp, gold string }

func benchResponses(tb testing.TB, n, size int) []benchResponse {
	rows := readJSONL[mathRow](tb, "testdata/math500_test.jsonl")
	out := make([]benchResponse, n)
	for i := range out {
		row := rows[i%len(rows)]
		sol := row.Solution
		var sb strings.Builder
		for k := 1; sb.Len()+len(sol) < size; k++ {
			filler := rows[(i*7+k)%len(rows)].Solution
			// Drop other solutions' boxes: only the last box states the answer.
			filler = strings.ReplaceAll(filler, `\boxed`, `\mathbf`)
			sb.WriteString(filler)
			sb.WriteString("\n\n")
		}
		sb.WriteString(sol)
		resp := sb.String()
		if len(resp) > size {
			resp = resp[len(resp)-size:]
		}
		gold := row.Answer
		if i%2 == 1 { // half of the responses are wrong
			gold = rows[(i+1)%len(rows)].Answer
		}
		out[i] = benchResponse{resp, gold}
	}
	return out
}

func benchGrade(b *testing.B, size int) {
	rs := benchResponses(b, 1000, size)
	g := New(Options{})
	var bytes int64
	for _, r := range rs {
		bytes += int64(len(r.resp))
	}
	b.SetBytes(bytes / int64(len(rs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rs[i%len(rs)]
		g.Grade(r.resp, r.gold)
	}
}

func BenchmarkGrade1_5KB(b *testing.B) { benchGrade(b, 1500) }
func BenchmarkGrade8KB(b *testing.B)   { benchGrade(b, 8<<10) }
func BenchmarkGrade32KB(b *testing.B)  { benchGrade(b, 32<<10) }

func BenchmarkGradeParallel1_5KB(b *testing.B) {
	rs := benchResponses(b, 1000, 1500)
	g := New(Options{})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := rs[i%len(rs)]
			g.Grade(r.resp, r.gold)
			i++
		}
	})
}

func BenchmarkExtract1_5KB(b *testing.B) {
	rs := benchResponses(b, 1000, 1500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Extract(rs[i%len(rs)].resp)
	}
}

// TestBenchResponsesGrade checks that the benchmark corpus exercises the
// real path: the correct half grades correct.
func TestBenchResponsesGrade(t *testing.T) {
	rs := benchResponses(t, 500, 1500)
	g := New(Options{})
	correct := 0
	for i := 0; i < len(rs); i += 2 {
		if r := g.Grade(rs[i].resp, rs[i].gold); r.Correct {
			correct++
		} else {
			t.Logf("%d: %s %q vs %q", i, r.Rule, r.Answer, rs[i].gold)
		}
	}
	if correct < 240 {
		t.Errorf("only %d/250 correct benchmark responses grade correct", correct)
	}
}
